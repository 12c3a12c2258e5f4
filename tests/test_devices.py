"""`apply_runtime_env`: what rlvr sets on its own (and only where unset), and what it leaves to the user."""

from __future__ import annotations

import os

import pytest

from rlvr.devices import CPU_DEFAULTS, LOCAL_CLUSTER_DEFAULTS, apply_runtime_env, runtime_defaults

# The user's choice, never an rlvr default: a CPU user with network can load hub datasets, a multi-node
# cluster keeps its own addresses and auth, library verbosity stays as configured.
NEVER_DEFAULTED = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS",
    "TOKENIZERS_PARALLELISM",
    "VLLM_CPU_KVCACHE_SPACE",  # would override every engine's kv_cache_memory_bytes
)
ALL_KEYS = (*CPU_DEFAULTS, *LOCAL_CLUSTER_DEFAULTS, *NEVER_DEFAULTED, "MY_VAR")


@pytest.fixture
def clean_env():
    saved = dict(os.environ)
    for key in ALL_KEYS:
        os.environ.pop(key, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_cpu_sets_only_the_engine_settings(clean_env):
    env = apply_runtime_env("cpu")
    assert set(env.chosen) == {
        "VLLM_ENABLE_V1_MULTIPROCESSING",
        "VLLM_CPU_OMP_THREADS_BIND",
        "OMP_NUM_THREADS",
    }
    for key in (*NEVER_DEFAULTED, *LOCAL_CLUSTER_DEFAULTS):
        assert key not in os.environ, key


def test_loopback_and_auth_only_for_rlvrs_own_local_cluster(clean_env):
    env = apply_runtime_env("cpu", local_cluster=True)
    assert os.environ["VLLM_HOST_IP"] == "127.0.0.1" and os.environ["RAY_AUTH_MODE"] == "disabled"
    assert "VLLM_HOST_IP=127.0.0.1" in env.line()
    assert runtime_defaults("cpu", local_cluster=False).keys() == CPU_DEFAULTS.keys()  # joining a cluster
    assert runtime_defaults("cuda") == {}
    for key in NEVER_DEFAULTED:
        assert key not in os.environ, key


def test_values_already_set_win_and_recipe_values_are_set(clean_env):
    os.environ["OMP_NUM_THREADS"] = "7"
    env = apply_runtime_env("cpu", extra={"HF_HUB_OFFLINE": "1", "MY_VAR": "x"})
    assert os.environ["OMP_NUM_THREADS"] == "7" and env.kept == {"OMP_NUM_THREADS": "7"}
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["MY_VAR"] == "x"
    line = env.line()
    assert "\n" not in line and line.startswith("rlvr: runtime env: ")
    assert "OMP_NUM_THREADS=7 (already set)" in line and "HF_HUB_OFFLINE=1 (resources.env)" in line
