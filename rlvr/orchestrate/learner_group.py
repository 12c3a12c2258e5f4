"""``LearnerGroup``: N DeepSpeed ranks as Ray actors, driven in lock-step.

Every call goes to EVERY rank (ZeRO-3 gathers parameters inside each forward, so a forward on one rank alone
deadlocks) and every ``ray.get`` has a deadline, so a stuck collective ends the run with a message instead
of hanging. Data reaches each rank as its own shard of whole prompt groups; results come back in input order.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import ray
import torch
from ray.exceptions import RayActorError, RayTaskError

from rlvr.config.sections import LearnerConfig
from rlvr.learner.rank import LearnerRank
from rlvr.learner.work import LearnerBatch, ScoredTokens, UpdateResult
from rlvr.orchestrate.group import first_line
from rlvr.orchestrate.weight_sync import publish_weights
from rlvr.registry import import_plugins, loaded_plugins
from rlvr.sync.group import WeightGroup


class _LearnerActor(LearnerRank):
    """A learner rank as a Ray actor: adds the object-store side of the weight sync."""

    def __init__(self, *, plugins: tuple[str, ...] = (), **kwargs: Any) -> None:
        import_plugins(plugins)  # the recipe's plugins, so their registered losses resolve in this process
        self._kwargs = kwargs  # the engine is built by `start`, once rank 0's address is known

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0: this node's address and a port free on it, where torch.distributed meets (any node)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("", 0))
            return ray.util.get_node_ip_address(), sock.getsockname()[1]

    def start(self, where: tuple[str, int]) -> dict[str, Any]:
        """Build this rank's engine; `where` is rank 0's `rendezvous`."""
        super().__init__(master_addr=where[0], master_port=where[1], **self._kwargs)
        return self.ready()

    def publish_weights(self) -> Any:
        weights = self.named_weights()  # every rank joins the ZeRO-3 gather
        return publish_weights(weights) if self.rank == 0 else None

    # The collective transport's sending side: rank 0 is rank 0 of the weight group (rlvr.sync).

    def open_weight_group(self, world_size: int, device: str, timeout_s: float) -> tuple[str, int] | None:
        """Rank 0 hosts the group's store on its node's address and a free port; returns (host, port)."""
        if self.rank != 0:
            return None
        self.close_weight_group()
        host = ray.util.get_node_ip_address()
        self._weight_group = WeightGroup(host, 0, 0, world_size, device, timeout_s)
        return host, self._weight_group.port

    def connect_weight_group(self) -> None:
        if self.rank == 0:
            self._weight_group.connect()

    def send_weights(self, bucket_bytes: int, dtype: str, transform: Any = None) -> dict[str, Any] | None:
        """Every rank joins the gather; rank 0 broadcasts the tensors in ``dtype``, bucket by bucket
        (after ``transform``, a function of the (name, tensor) list, when given)."""
        t0 = time.perf_counter()
        weights = self.named_weights()
        if self.rank != 0:
            return None
        cast = getattr(torch, dtype)
        weights = [(n, t.to(cast)) for n, t in weights]
        if transform is not None:
            weights = transform(weights)
        num_tensors, num_bytes = self._weight_group.send(weights, bucket_bytes)
        return {"num_tensors": num_tensors, "num_bytes": num_bytes, "seconds": time.perf_counter() - t0}

    def close_weight_group(self) -> None:
        group = getattr(self, "_weight_group", None)
        if group is not None:
            group.close()
        self._weight_group = None


class LearnerError(RuntimeError):
    """A learner rank failed, died or missed its deadline; the message names the rank and the call."""


class LearnerGroup:
    """The learner ranks of one run.

    Args:
        model_path: HF-format policy to train.
        config: The recipe's learner section.
        seed: Base seed (rank r uses seed + r for its own streams; parameters start identical).
        device: "cpu" or "cuda".
        reference: Also keep a frozen reference copy (for KL-to-reference terms).
        num_cpus / num_gpus: Ray resources per rank.
        dtype: Parameter dtype, the resolved ``model.dtype`` ("float32", "bfloat16" or "float16").
        resources: Custom Ray resources per rank (``resources.learner_node_resources``: pins ranks to nodes).
        wait: Return once every rank is ready; False returns at once (the ranks start in the background, e.g.
            while the rollout workers start) and ``wait_ready`` waits later.
    """

    def __init__(
        self,
        model_path: str,
        config: LearnerConfig,
        *,
        seed: int,
        device: str,
        reference: bool = False,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        start_timeout_s: float = 600.0,
        total_updates: int = 1,
        dtype: str = "float32",
        resources: dict[str, float] | None = None,
        wait: bool = True,
    ) -> None:
        self.config = config
        self.start_timeout_s = start_timeout_s
        self.timeout = config.collective_timeout_s
        # Every rank must see calls in one order (their collectives pair up), also when two threads call (a
        # weight-group refit from the rollout prefetch thread while the loop drives an update).
        self._submit = threading.Lock()
        actor_cls = ray.remote(_LearnerActor).options(
            num_cpus=num_cpus, num_gpus=num_gpus, resources=dict(resources or {})
        )
        world = config.num_ranks
        self.ranks = [
            actor_cls.remote(
                rank=r,
                world_size=world,
                model_path=str(model_path),
                config=config,
                seed=seed,
                device=device,
                reference=reference,
                total_updates=total_updates,
                dtype=dtype,
                plugins=tuple(loaded_plugins()),
            )
            for r in range(world)
        ]
        # Rank 0's node address (not the driver's loopback: ranks may sit on other nodes) reaches every rank's
        # `start` as a Ray reference, so nothing here waits for it.
        where = self.ranks[0].rendezvous.remote()
        self._starting = {actor.start.remote(where): r for r, actor in enumerate(self.ranks)}
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Return once every rank has built its engine (raises `LearnerError` naming a rank that failed)."""
        pending, self._starting = self._starting, {}
        self._collect(pending, "start", self.start_timeout_s, deadline_key="")

    def _all(
        self, method: str, *per_rank_args: list[Any], timeout: float | None = None, **kwargs: Any
    ) -> list:
        """Call `method` on every rank (rank r gets the r-th item of each per-rank arg list)."""
        limit = timeout or self.timeout
        pending = {}
        with self._submit:
            for r, actor in enumerate(self.ranks):
                args = [a[r] for a in per_rank_args]
                pending[getattr(actor, method).remote(*args, **kwargs)] = r
        return self._collect(pending, method, limit, "" if timeout else "learner.collective_timeout_s; ")

    def _collect(self, pending: dict[Any, int], method: str, limit: float, deadline_key: str) -> list:
        """The results of calls `pending` (reference -> rank), in rank order, within `limit` seconds."""
        results: list[Any] = [None] * len(self.ranks)
        deadline = time.monotonic() + limit
        # Collect as ranks finish, so a dead rank is named at once rather than after its peers, which wait
        # for it inside a collective, run into the deadline.
        while pending:
            left = deadline - time.monotonic()
            done, _ = ray.wait(list(pending), num_returns=1, timeout=max(left, 0.0))
            if not done:
                stuck = sorted(pending.values())
                ranks = f"rank{'s' if len(stuck) > 1 else ''} {', '.join(map(str, stuck))}"
                raise LearnerError(
                    f"learner {ranks} did not finish {method!r} within {limit:.0f} s "
                    f"({deadline_key}stuck in a collective or overloaded)"
                )
            for ref in done:
                rank = pending.pop(ref)
                try:
                    results[rank] = ray.get(ref)
                except RayActorError as exc:
                    raise LearnerError(
                        f"learner rank {rank} died during {method!r} ({first_line(exc)})"
                    ) from exc
                except RayTaskError as exc:
                    raise LearnerError(
                        f"learner rank {rank} raised during {method!r}: {first_line(exc)}"
                    ) from exc
        return results

    @property
    def world_size(self) -> int:
        return len(self.ranks)

    def score(
        self, shards: list[LearnerBatch], *, entropy: bool, reference: bool, policy: bool = True
    ) -> list[ScoredTokens]:
        """Per-rank old logprobs (+ entropy, + reference logprobs) of each rank's shard (`policy=False`:
        reference logprobs only)."""
        return self._all("score", shards, entropy=entropy, reference=reference, policy=policy)

    def update(
        self, updates: list[list[LearnerBatch]], spec: dict[str, Any], step: int
    ) -> list[UpdateResult]:
        """Run the optimizer updates of one RL step; `updates[r]` is rank r's list of mini-batch plans."""
        return self._all("update", updates, spec=spec, step=step)

    def publish_weights(self, timeout: float | None = None) -> Any:
        """Every rank joins the gather; rank 0's object-store reference to (name, tensor) pairs is returned.

        ``timeout`` (the recipe's ``rollout.sync.timeout_s``) replaces the collective deadline for this call.
        """
        return self._all("publish_weights", timeout=timeout)[0]

    def open_weight_group(self, world_size: int, device: str, timeout: float) -> tuple[str, int]:
        """Rank 0 hosts a new collective weight group of ``world_size`` members; returns its (host, port)."""
        return self._all("open_weight_group", world_size=world_size, device=device, timeout_s=timeout)[0]

    def connect_weight_group(self, timeout: float) -> None:
        """Rank 0 joins the group's rendezvous (returns once every rollout engine worker joined too)."""
        self._all("connect_weight_group", timeout=timeout)

    def send_weights(
        self, bucket_bytes: int, dtype: str, timeout: float, transform: Any = None
    ) -> dict[str, Any]:
        """Every rank gathers, rank 0 broadcasts into the weight group; rank 0's counts and time.

        ``transform`` (a picklable function of the (name, tensor) list) runs in rank 0 before the broadcast.
        """
        kwargs = {"bucket_bytes": bucket_bytes, "dtype": dtype, "transform": transform}
        return self._all("send_weights", timeout=timeout, **kwargs)[0]

    def close_weight_group(self, timeout: float | None = None) -> None:
        self._all("close_weight_group", timeout=timeout)

    def probe(
        self, prompt_ids: list[list[int]], response_ids: list[list[int]], timeout: float | None = None
    ) -> list[list[float]]:
        """Learner logprobs of fixed probe sequences (computed on every rank, rank 0's returned)."""
        n = self.world_size
        return self._all("probe", [prompt_ids] * n, [response_ids] * n, timeout=timeout)[0]

    def save(self, directory: str) -> None:
        self._all("save", [directory] * self.world_size)

    def load(self, directory: str) -> None:
        self._all("load", [directory] * self.world_size)

    def export_hf(self, directory: str) -> None:
        self._all("export_hf", [directory] * self.world_size)

    def rng_states(self) -> list[Any]:
        return self._all("rng_state")

    def set_rng_states(self, states: list[Any]) -> None:
        self._all("set_rng_state", states)

    def shutdown(self) -> None:
        for actor in self.ranks:
            ray.kill(actor, no_restart=True)
        self.ranks = []
