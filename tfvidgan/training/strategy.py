"""Chooses the tf.distribute strategy: the one place where distribution is decided.

* `TF_CONFIG` names a cluster with more than one task → `MultiWorkerMirroredStrategy`.
* otherwise → `MirroredStrategy` over all visible GPUs, or over the CPU when there is none.

`split_cpu(n)` exposes `n` logical CPU devices; tests use it to run two replicas on one CPU.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from tfvidgan.errors import ConfigError

STRATEGY_KINDS = ("auto", "mirrored", "multi_worker", "one_device")


def split_cpu(num_devices: int) -> list[str]:
    """Splits the physical CPU into `num_devices` logical devices; call before any TF op runs.

    Returns their names, e.g. ["/cpu:0", "/cpu:1"]. Calling it again with the same number is a no-op.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if not current or len(current) != num_devices:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    return [f"/cpu:{i}" for i in range(num_devices)]


def _tf_config_cluster_size() -> int:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as e:
        raise ConfigError(f"environment variable TF_CONFIG is not valid JSON: {e}") from e
    return sum(len(tasks) for name, tasks in cluster.items() if name in ("chief", "worker"))


def make_strategy(kind: str = "auto", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """Returns the strategy for `kind` (one of STRATEGY_KINDS); create it before building any model."""
    if kind not in STRATEGY_KINDS:
        raise ConfigError(f"--strategy={kind!r} is not one of {STRATEGY_KINDS}")
    if kind == "auto":
        kind = "multi_worker" if _tf_config_cluster_size() > 1 else "mirrored"
    if kind == "multi_worker":
        if _tf_config_cluster_size() == 0:
            raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "one_device":
        return tf.distribute.OneDeviceStrategy((devices or ["/cpu:0"])[0])
    if devices is None:
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] if gpus else ["/cpu:0"]
    return tf.distribute.MirroredStrategy(devices)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This worker's index in the cluster (0 on a single machine)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_id is None:
        return 0
    return int(resolver.task_id)
