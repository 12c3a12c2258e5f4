"""Start-up checks that need no engine: the plugins and every method/reward name, the device against what this
machine has, the model folder or hub id, its tokenizer and chat template, the datasets, prompt lengths against
``rollout.max_prompt_tokens``, and the batch against the dataset size.

`rlvr train` runs them in the driver before any Ray actor starts (`Run.start`), `rlvr validate` runs them
without building anything. Every failure is a ``StartupError`` whose message names the recipe key and the
file or row, so the user reads one line instead of a library traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.config import Recipe
from rlvr.models import ModelBuildError, builtin_path, is_builtin, resolve_builtin
from rlvr.plugins import load_plugins

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# A model folder needs at least one of these for AutoTokenizer (transformers builds an empty tokenizer from
# config.json alone rather than failing).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
# How many offending rows a message lists before "...".
SHOWN_ROWS = 8


class StartupError(RuntimeError):
    """A recipe input (model, tokenizer, dataset, batch size) that cannot be used; the message says which."""


@dataclass
class RunInputs:
    """What the driver needs from the checks: the model path, the tokenizer, rows and their prompt ids."""

    model_path: str
    tokenizer: Any
    train_rows: list[dict[str, Any]]
    train_prompt_ids: list[list[int]]
    eval_rows: list[dict[str, Any]] = field(default_factory=list)
    eval_prompt_ids: list[list[int]] = field(default_factory=list)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_device(recipe: Recipe, *, device_count: Callable[[], int] | None = None) -> str:
    """The device the run uses on this machine ("cpu" or "cuda"), once the machine can give it.

    Args:
        recipe: The resolved recipe.
        device_count: Reports the usable CUDA devices (default `rlvr.devices.cuda_device_count`).

    Raises:
        StartupError: GPU actors that reserve no GPU; GPUs reserved on a machine that runs on CPU; colocated
            placement on CUDA with the collective (NCCL) weight push, or fractional GPUs (NCCL cannot put two
            members of a group on one GPU); and, for the one-machine Ray cluster ``rlvr train`` starts when
            ``resources.ray_address`` is unset, ``device: cuda`` without a usable CUDA device or more GPUs than
            this machine has (Ray would wait forever).
    """
    from rlvr import devices

    count = (device_count or devices.cuda_device_count)()
    device = devices.resolve_device(recipe.device, lambda: count)
    res, ranks, workers = recipe.resources, recipe.learner.num_ranks, recipe.rollout.num_workers
    rollout_gpus = res.rollout_gpus(recipe.rollout.tensor_parallel_size, device)
    needed = ranks * res.gpus_per_learner + workers * rollout_gpus
    split = (
        f"learner.num_ranks={ranks} x resources.gpus_per_learner={res.gpus_per_learner:g} + "
        f"rollout.num_workers={workers} x {rollout_gpus:g} GPUs"
    )
    # Joined to a cluster (`resources.ray_address`), the driver may run on a node without GPUs: Ray places the
    # actors on the nodes that have them.
    if device == "cuda" and count == 0 and res.ray_address is None:
        raise StartupError(
            f"device: cuda, but this machine has no usable CUDA device ({devices.torch_build()}); run the "
            "recipe on a GPU machine or cluster (rlvr launch slurm|ray), or set device=cpu"
        )
    if device == "cpu" and needed > 0:
        raise StartupError(
            f"device: {recipe.device} runs on cpu here (no CUDA device), but {split} reserve GPUs that Ray "
            "would wait for forever; set resources.gpus_per_learner=0 and resources.gpus_per_rollout_worker=0"
        )
    for key, gpus in (("gpus_per_learner", res.gpus_per_learner), ("gpus_per_rollout_worker", rollout_gpus)):
        if device == "cuda" and gpus == 0:
            raise StartupError(
                f"resources.{key}=0 on device: cuda: an actor that reserves no GPU gets none from Ray; reserve "
                f"whole GPUs, e.g. resources.{key}=1"
            )
    if device == "cuda":
        _check_one_process_per_gpu(recipe, rollout_gpus)
    if device == "cuda" and res.ray_address is None and needed > count + 1e-9:
        raise StartupError(
            f"resources: {split} = {needed:g} GPUs, but this machine has {count} and resources.ray_address is "
            "unset, so rlvr train would start a one-machine Ray cluster and wait for the missing GPUs forever; "
            "launch it on a cluster (rlvr launch slurm|ray RECIPE) or lower learner.num_ranks / "
            "rollout.num_workers"
        )
    return device


def _check_one_process_per_gpu(recipe: Recipe, rollout_gpus: float) -> None:
    """NCCL refuses two members of one group on the same GPU: the learner ranks' group, and the weight push's
    group of learner rank 0 and every rollout engine (the collective transport). Fractional GPUs (and so
    colocated placement) would let Ray put two of them on one GPU.
    """
    res, ranks = recipe.resources, recipe.learner.num_ranks
    collective = recipe.rollout.sync.transport != "object_store"
    if collective and res.placement == "colocated":
        raise StartupError(
            "resources.placement: colocated on device: cuda: the weight push is an NCCL broadcast from learner "
            "rank 0 into every rollout engine, and NCCL refuses two processes of one group on the same GPU "
            "(colocated actors share GPUs); set resources.placement=disaggregated"
        )
    fractional = [("gpus_per_learner", res.gpus_per_learner)] if ranks > 1 or collective else []
    if collective:
        fractional.append(("gpus_per_rollout_worker", rollout_gpus))
    for key, gpus in fractional:
        if gpus != int(gpus):
            raise StartupError(
                f"resources.{key}={gpus:g} on device: cuda: NCCL (the learner ranks' collectives and the weight "
                "push) needs one process per GPU, and fractional GPUs let Ray put two on one GPU; reserve whole "
                "GPUs"
            )


def resolve_model_dir(recipe: Recipe, recipe_dir: Path, *, build: bool = True) -> str | None:
    """The policy folder (or hub id). ``tiny`` is built on first use when ``build``.

    With ``build`` False (``rlvr validate``) nothing is built or downloaded: None when the tiny model is not
    built yet or a hub id is not in the local cache.

    Raises:
        StartupError: a local path that does not exist or is not a model folder, or a hub id that cannot
            be loaded (not found, offline without a cached copy, ...).
    """
    path = recipe.model.path
    local = (recipe_dir / path).expanduser()
    if is_builtin(path):  # a built-in name wins over a same-named folder next to the recipe
        if not build:
            return builtin_path(path)
        try:
            return resolve_builtin(path)
        except ModelBuildError as exc:  # e.g. a built-in model whose optional packages are not installed
            raise StartupError(str(exc)) from exc
    if local.exists():
        if not local.is_dir():
            raise StartupError(f"model.path: {local} is a file, not a model folder")
        if not (local / "config.json").is_file():
            raise StartupError(f"model.path: {local} is not a model folder (no config.json)")
        return str(local)
    if not is_hub_id(path):
        raise StartupError(f"model.path: {local} does not exist")
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(path, local_files_only=not build)
    except Exception as exc:  # any loader failure is the same user problem: this id cannot be loaded
        if not build:
            return None
        raise StartupError(
            f"model.path: {path!r} is not a local folder ({local} does not exist) and cannot be loaded as "
            f"a hub model ({_first_line(exc)})"
        ) from None
    return path


def is_hub_id(name: str) -> bool:
    """``org/name`` or ``name``: what the hub accepts; anything else (``./x``, ``/a/b``, ``~/m``) is a path."""
    return bool(_HUB_ID.match(name)) and name.count("/") <= 1 and not name.endswith((".", "-"))


def _is_hub_dataset(cfg: Any, recipe_dir: Path) -> bool:
    from rlvr.data.loaders import is_local_source

    return cfg.source != "synthetic" and not is_local_source(cfg.source)


def load_tokenizer(model_path: str, recipe: Recipe) -> Any:
    """The model's tokenizer; a chat template is required when a dataset uses ``template: chat``."""
    folder = Path(model_path)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise StartupError(
            f"model.path: {model_path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)})"
        )
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except Exception as exc:  # a folder without tokenizer files, a corrupt tokenizer.json, ...
        raise StartupError(
            f"model.path: cannot load a tokenizer from {model_path} ({_first_line(exc)})"
        ) from None
    for key, cfg in _datasets(recipe):
        if cfg.template == "chat" and not getattr(tokenizer, "chat_template", None):
            raise StartupError(
                f"{key}.template: chat, but the tokenizer in {model_path} has no chat template "
                f"(set {key}.template: plain, or add a chat template to the model folder)"
            )
    return tokenizer


def _datasets(recipe: Recipe) -> list[tuple[str, Any]]:
    out = [("data.train", recipe.data.train)]
    if recipe.data.eval is not None:
        out.append(("data.eval", recipe.data.eval))
    return out


def load_rows(key: str, cfg: Any, recipe_dir: Path, tokenizer: Any) -> list[dict[str, Any]]:
    """Load one dataset split; any failure names the recipe key and the file (and row)."""
    from rlvr.data.loaders import DataError, load_dataset_rows
    from rlvr.data.prompts import local_dataset

    try:
        rows = load_dataset_rows(local_dataset(cfg, recipe_dir), tokenizer=tokenizer)
    except DataError as exc:
        raise StartupError(f"{key}: {exc}") from None
    if not rows:
        raise StartupError(f"{key}: {cfg.source} has no rows")
    return rows


def prompt_ids(key: str, rows: list[dict[str, Any]], tokenizer: Any, limit: int) -> list[list[int]]:
    """Token ids of every prompt; all prompts over ``limit`` are reported at once (never truncated)."""
    from rlvr.data.prompts import prompt_token_ids

    out, over = [], []
    for i, row in enumerate(rows):
        ids = prompt_token_ids(tokenizer, row)
        if len(ids) > limit:
            over.append((row.get("index", i), len(ids)))
        out.append(ids)
    if over:
        shown = ", ".join(f"row {r} ({n} tokens)" for r, n in over[:SHOWN_ROWS])
        more = f", ... ({len(over) - SHOWN_ROWS} more)" if len(over) > SHOWN_ROWS else ""
        raise StartupError(
            f"{key}: {len(over)} of {len(rows)} prompts are longer than rollout.max_prompt_tokens={limit}: "
            f"{shown}{more}; raise rollout.max_prompt_tokens or drop those rows (prompts are never truncated)"
        )
    return out


def check_inputs(
    recipe: Recipe,
    recipe_dir: str | Path,
    *,
    build: bool = True,
    notes: list[str] | None = None,
    device_count: Callable[[], int] | None = None,
) -> RunInputs | None:
    """Run every start-up check and return what the driver needs.

    Args:
        recipe: The resolved recipe.
        recipe_dir: Relative model and dataset paths are resolved against it.
        build: `rlvr train`: build the tiny model if needed, load hub models and datasets. False
            (`rlvr validate`): build and download nothing; what cannot be checked is skipped, with a line
            appended to ``notes`` saying so, and the result is None.
        notes: Receives one line per check that was skipped.
        device_count: Reports the usable CUDA devices (`check_device`); only `rlvr train` (``build``) checks
            the device: `rlvr validate` runs anywhere, e.g. on a login node without GPUs.
    """
    notes = [] if notes is None else notes
    recipe_dir = Path(recipe_dir).resolve()
    load_plugins(recipe, recipe_dir)  # first: a misspelt method name fails in seconds
    if build:
        check_device(recipe, device_count=device_count)  # before any download: the GPUs come first
    elif recipe.device != "cpu":
        notes.append(f"note: device: {recipe.device}: the GPUs are checked by rlvr train where it runs")
    model_path = resolve_model_dir(recipe, recipe_dir, build=build)
    tokenizer = None
    if model_path is None:
        notes.append(
            f"note: model.path: the built-in model {recipe.model.path!r} is not built yet (the first "
            "`rlvr train` builds it; `rlvr tiny build` for the tiny one); tokenizer and prompt-length checks "
            "skipped"
            if is_builtin(recipe.model.path)
            else f"note: model.path: {recipe.model.path!r} is not in the local hub cache; tokenizer and "
            "prompt-length checks skipped"
        )
    else:
        tokenizer = load_tokenizer(model_path, recipe)
    limit = recipe.rollout.max_prompt_tokens
    rows: dict[str, list[dict[str, Any]]] = {}
    ids: dict[str, list[list[int]]] = {}
    for key, cfg in _datasets(recipe):
        if not build and _is_hub_dataset(cfg, recipe_dir):
            notes.append(f"note: {key}: hub dataset {cfg.source!r} not downloaded; not checked")
            continue
        rows[key] = load_rows(key, cfg, recipe_dir, tokenizer)
        if key == "data.eval" and recipe.eval.max_prompts:
            rows[key] = rows[key][: recipe.eval.max_prompts]
        if key == "data.train":
            n = recipe.train.prompts_per_step
            if n > len(rows[key]):
                raise StartupError(
                    f"train.prompts_per_step={n} is larger than data.train ({len(rows[key])} rows): every "
                    f"step would repeat prompts; lower train.prompts_per_step or add rows"
                )
        if tokenizer is not None:
            ids[key] = prompt_ids(key, rows[key], tokenizer, limit)
    if model_path is None or len(ids) < len(_datasets(recipe)):
        checked = ", ".join(f"{k} {len(v)} rows" for k, v in rows.items()) or "no local inputs"
        notes.insert(0, f"checked: {checked}")
        return None
    notes.append(
        f"checked: model {model_path} (tokenizer loads), "
        + ", ".join(f"{k} {len(v)} rows" for k, v in rows.items())
        + f", every prompt <= rollout.max_prompt_tokens={limit}"
    )
    return RunInputs(
        model_path,
        tokenizer,
        rows["data.train"],
        ids["data.train"],
        rows.get("data.eval", []),
        ids.get("data.eval", []),
    )
