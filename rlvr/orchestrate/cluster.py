"""Ray cluster setup: a local loopback cluster for one machine, or a connection to an existing cluster.

This package is the only place in rlvr that imports ray.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from rlvr.devices import apply_runtime_env, runtime_defaults
from rlvr.runlog import adopt_vendor_loggers


def actor_env_vars(
    device: str, extra: dict[str, str] | None = None, *, local_cluster: bool = False
) -> dict[str, str]:
    """Environment every rlvr actor starts with: the runtime defaults (`rlvr.devices`) plus ``extra``.

    Values already set in the driver's environment win over the defaults, so a launcher can override them.
    """
    defaults = runtime_defaults(device, local_cluster=local_cluster)
    env = {key: os.environ.get(key, value) for key, value in defaults.items()}
    env |= extra or {}
    return env


def worker_setup_hook(log_path: str, level: str = "INFO") -> Callable[[], None]:
    """Ray's per-worker setup hook: the actor process writes its output into the run's log file."""

    def setup() -> None:
        from rlvr.runlog import route_worker_output

        try:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            route_worker_output(log_path, level)
        except OSError:  # a node without the driver's run directory (multi-node): Ray's own worker logs
            pass

    return setup


def init_ray(
    address: str | None = None,
    *,
    device: str = "cpu",
    num_cpus: int | None = None,
    env_vars: dict[str, str] | None = None,
    namespace: str = "rlvr",
    log_path: str | None = None,
    log_level: str = "INFO",
) -> dict[str, Any]:
    """Start (or join) the Ray cluster that holds the rollout and learner actors.

    Args:
        address: None starts a private local cluster bound to 127.0.0.1 (no dashboard). A cluster address
            ("auto", "ray://host:10001", "host:6379") joins a running multi-node cluster instead.
        device: "cpu" or "cuda"; on CPU the vLLM/OMP runtime defaults are shipped to every actor.
        num_cpus: CPUs the local cluster advertises (default: all). Ignored when joining a cluster.
        env_vars: Extra environment variables for every actor (they override the defaults).
        namespace: Ray namespace, so named actors of two runs do not collide.
        log_path: The run's log file: every actor's output goes there, and only its WARNING+ records
            (minus known-harmless vendor ones, see `rlvr.runlog`) reach the driver's console.
        log_level: Lowest level actors log to the file.

    Returns:
        ``ray.cluster_resources()`` of the cluster, for logging.
    """
    local = address is None  # rlvr's own loopback cluster (see rlvr.devices.LOCAL_CLUSTER_DEFAULTS)
    apply_runtime_env(device, local_cluster=local, extra=env_vars)
    if ray.is_initialized():
        return ray.cluster_resources()
    adopt_vendor_loggers()  # Ray's own driver messages follow the driver's logging setup
    runtime_env: dict[str, Any] = {"env_vars": actor_env_vars(device, env_vars, local_cluster=local)}
    if log_path is not None:
        # vLLM would otherwise print to the console through its own handler instead of the root logger.
        runtime_env["env_vars"].setdefault("VLLM_CONFIGURE_LOGGING", "0")
        runtime_env["worker_process_setup_hook"] = worker_setup_hook(str(log_path), log_level)
    if address is None:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            # Ray and vLLM would otherwise bind to the machine's external interface.
            _node_ip_address="127.0.0.1",
            runtime_env=runtime_env,
            namespace=namespace,
            log_to_driver=True,
        )
    else:
        ray.init(address=address, runtime_env=runtime_env, namespace=namespace)
    return ray.cluster_resources()


def shutdown_ray() -> None:
    """Stop the driver's Ray connection (and the local cluster if this driver started it)."""
    if ray.is_initialized():
        ray.shutdown()
