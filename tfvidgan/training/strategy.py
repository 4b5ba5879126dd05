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


_WATCHDOG = r"""
import os, signal, socket, sys
timeout, parent, me, peers = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
import select
if select.select([sys.stdin], [], [], timeout)[0]:
    sys.exit(0)                                   # the parent formed the cluster (or died): nothing to do
def reachable(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except (OSError, ValueError):
        return False
missing = [p for p in peers if not reachable(p.split("=", 1)[1])]
sys.stderr.write("tfvidgan.errors.ClusterError: the cluster did not form within --collective_timeout=%g s (this is "
                 "%s); not reachable: %s. Start every task of TF_CONFIG with the same command.\n"
                 % (timeout, me, ", ".join(m.replace("=", " (") + ")" for m in missing)
                    or "none (a task is up but not joining)"))
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


def _startup_watchdog(timeout_seconds: float):
    """Kills this process (one line on stderr naming the unreachable tasks) if the cluster has not formed
    within `timeout_seconds`: TF 2.21 waits for missing tasks at start-up without a deadline here, inside
    a call that holds the GIL, so the watchdog is a tiny separate process. Returns a function to call
    once the strategy exists."""
    import subprocess
    import sys

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec().as_dict()
    me = (resolver.task_type, resolver.task_id)
    peers = [f"/job:{job}/task:{i}={address}" for job in ("chief", "worker")
             for i, address in enumerate(spec.get(job, [])) if (job, i) != me]
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(timeout_seconds), str(os.getpid()),
                                 f"/job:{me[0]}/task:{me[1]}", *peers], stdin=subprocess.PIPE)

    def started():
        watchdog.stdin.close()  # EOF: the watchdog exits
        watchdog.wait()
    return started


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
        started = _startup_watchdog(collective_timeout)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        finally:
            started()
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


def peer_tasks(strategy: tf.distribute.Strategy) -> list[str]:
    """The other tasks of this worker's cluster, e.g. ["/job:worker/task:1"] ([] on one machine)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return []
    spec = resolver.cluster_spec().as_dict()
    me = (resolver.task_type, resolver.task_id)
    return [f"/job:{job}/task:{i}" for job in ("chief", "worker") for i in range(len(spec.get(job, [])))
            if (job, i) != me]


def describe_cluster_error(error: Exception, strategy: tf.distribute.Strategy) -> str | None:
    """A one-line explanation naming the missing task, if `error` is a multi-worker communication failure
    (peer died, never started, timed out); None for other errors or single-machine strategies."""
    import re
    peers = peer_tasks(strategy)
    if not peers or not isinstance(error, tf.errors.OpError):
        return None
    if not isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                              tf.errors.AbortedError, tf.errors.InternalError, tf.errors.CancelledError,
                              tf.errors.FailedPreconditionError, tf.errors.UnknownError)):
        return None
    text = str(error)
    resolver = strategy.cluster_resolver
    me = f"/job:{resolver.task_type}/task:{resolver.task_id}"
    named = sorted({f"/job:{m.group(1)}/task:{m.group(2)}"
                    for m in re.finditer(r"/job:(\w+)/replica:\d+/task:(\d+)", text)} - {me})
    missing = ", ".join(named or peers)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("File ", "Detected at node", "Graph execution"))
              and any(k in line.lower() for k in ("connection", "timed out", "deadline", "heartbeat",
                                                   "unavailable", "task:", "peer"))]
    first_line = (useful or lines[-1:] or [type(error).__name__])[0][:300]
    return (f"lost contact with {missing} (this is {me}): {type(error).__name__}: {first_line}. "
            f"Restart ALL workers with the same command; they resume from the last checkpoint.")
