"""Chooses the tf.distribute strategy: the one place where distribution is decided.

* `TF_CONFIG` names a cluster with more than one task → `MultiWorkerMirroredStrategy`.
* otherwise → `MirroredStrategy` over all visible GPUs, or over the CPU when there is none.

`split_cpu(n)` exposes `n` logical CPU devices; tests use it to run two replicas on one CPU.

Multi-worker runs never wait forever: before `MultiWorkerMirroredStrategy` starts, the coordination service
is configured with a registration timeout (a worker that never starts), a heartbeat timeout (a worker that
dies or stops answering) and every collective gets `timeout_seconds` (a peer alive but stuck). The error
then names the missing task (`describe_cluster_error`), and the recipe is: restart all workers with the
same command; they resume from the last checkpoint.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from tfvidgan.errors import ConfigError

STRATEGY_KINDS = ("auto", "mirrored", "multi_worker", "one_device")
# Seconds a worker waits for its peers: at start (all tasks registered) and in each collective. Long enough
# for the chief's host-side work between steps (samples, --eval_every with encoder training on first use).
DEFAULT_COLLECTIVE_TIMEOUT = 600.0
# A peer that misses heartbeats this long is declared dead and every task's pending work fails.
HEARTBEAT_TIMEOUT_SECONDS = 30


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


def _configure_coordination(timeout_seconds: float) -> None:
    """Sets the coordination service's registration and heartbeat timeouts before the strategy does
    (it only configures the service when none is configured yet). Uses TF's eager context directly:
    `MultiWorkerMirroredStrategy` exposes no public option for these timeouts in TF 2.21."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster_spec = resolver.cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster_spec.num_tasks(job))
            for job in ("chief", "worker") if job in cluster_spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(cluster_spec),
        cluster_register_timeout_in_ms=int(timeout_seconds * 1000),
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_SECONDS * 1000,
        shutdown_barrier_timeout_in_ms=int(timeout_seconds * 1000), coordinated_jobs=jobs)


def make_strategy(kind: str = "auto", devices: list[str] | None = None,
                  collective_timeout: float = DEFAULT_COLLECTIVE_TIMEOUT) -> tf.distribute.Strategy:
    """Returns the strategy for `kind` (one of STRATEGY_KINDS); create it before building any model.

    `collective_timeout` (multi-worker only, seconds): how long a worker waits for the others to start and
    in each collective; a heartbeat timeout of `HEARTBEAT_TIMEOUT_SECONDS` detects dead peers sooner."""
    if kind not in STRATEGY_KINDS:
        raise ConfigError(f"--strategy={kind!r} is not one of {STRATEGY_KINDS}")
    if kind == "auto":
        kind = "multi_worker" if _tf_config_cluster_size() > 1 else "mirrored"
    if kind == "multi_worker":
        if _tf_config_cluster_size() == 0:
            raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        _configure_coordination(collective_timeout)
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
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
