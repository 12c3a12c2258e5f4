"""Orchestration: the Ray cluster, rollout-worker actors, and verified learner -> rollout weight sync.

The only rlvr package that imports ray. Importing it registers both weight transports (``object_store`` and
``collective``).
"""

from rlvr.orchestrate.cluster import actor_env_vars, init_ray, shutdown_ray
from rlvr.orchestrate.collective import CollectiveTransport
from rlvr.orchestrate.group import RolloutGroup, RolloutWorkerError, split_evenly
from rlvr.orchestrate.rollout_worker import RolloutWorker
from rlvr.orchestrate.weight_sync import (
    ObjectStoreTransport,
    SyncStats,
    WeightSyncError,
    WeightTransport,
    get_transport,
    make_transport,
    publish_weights,
    register_transport,
    sync_weights,
    verify_sync,
)

__all__ = [
    "CollectiveTransport",
    "ObjectStoreTransport",
    "RolloutGroup",
    "RolloutWorker",
    "RolloutWorkerError",
    "SyncStats",
    "WeightSyncError",
    "WeightTransport",
    "actor_env_vars",
    "get_transport",
    "init_ray",
    "make_transport",
    "publish_weights",
    "register_transport",
    "shutdown_ray",
    "split_evenly",
    "sync_weights",
    "verify_sync",
]
