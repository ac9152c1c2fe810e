"""Distribution: logical devices, strategy selection, local multi-worker launches.

`--strategy auto|default|one-device|mirrored|multi-worker|tpu` is decided by one pure
function, `plan_strategy(runtime, probe)`, over a small `DeviceProbe` (GPU and CPU
counts, whether a TPU resolves, whether `TF_CONFIG` is set), so every branch is tested
without the hardware; `select_strategy` probes the real machine and builds the plan.

Order matters for the caller (the CLI):

1. `configure_devices(runtime)` first thing, before any TensorFlow op runs: it splits
   the CPU into logical devices for `mirrored --devices N`, which TensorFlow only
   allows before its runtime starts.
2. If `should_launch_local_workers(runtime)`, this process is only a launcher: it
   reruns its own command line through `shared.local_workers.launch_local_workers`
   and exits with the result. Each launched worker sees `DEEPFIELD_LOCAL_WORKER=1` and its own `TF_CONFIG`.
3. Otherwise `select_strategy(runtime)`; build and compile the model under
   `strategy.scope()`; only `is_chief()` writes the run directory.

TPUs (not runnable here; this is how the `tpu` path is meant to be used):

- Cloud TPU VM (the TPU is attached to this host): `--strategy tpu --set
  runtime.tpu=local`; without `runtime.tpu`, a host with `/dev/accel*` (v2-v4 TPU VMs)
  is treated as a TPU VM and resolved as `local` too.
- TPU node / older Colab runtimes: the resolver reads the address from the
  environment (`TPU_NAME`, or `COLAB_TPU_ADDR` on Colab), so `--strategy tpu` alone
  works; otherwise name it: `--set runtime.tpu=my-tpu` or `runtime.tpu=grpc://10.0.0.2:8470`.
- `auto` only tries the TPU resolver when one of those hints is present, so it stays
  fast on a laptop, where the resolver would otherwise wait on the GCE metadata server;
  when the TPU then fails to connect, `auto` logs why and falls back to GPUs or CPU.

Connecting is `TPUClusterResolver(tpu=...)`, `tf.config.experimental_connect_to_cluster`,
`tf.tpu.experimental.initialize_tpu_system`, then `TPUStrategy(resolver)`; any failure
there is reported as `--strategy tpu: no TPU found ...` (a UserError). On a TPU the
global batch should be a multiple of 8 x cores and datasets should use
`drop_remainder=True`, since XLA compiles static shapes.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from shared.errors import UserError
from shared.local_workers import LOCAL_WORKER_ENV
from shared.training.settings import RuntimeConfig

if TYPE_CHECKING:  # TensorFlow is imported where used, keeping this module light to import
    import tensorflow as tf

LOG = logging.getLogger("deepfield.distribute")

# Environment variables that say a TPU is plausibly attached or addressable.
TPU_ENV_HINTS = (
    "TPU_NAME",
    "COLAB_TPU_ADDR",
    "TPU_WORKER_ID",
    "TPU_WORKER_HOSTNAMES",
    "TPU_ACCELERATOR_TYPE",
    "TPU_IP_ADDRESS",
)

StrategyKind = Literal["default", "one-device", "mirrored", "multi-worker", "tpu"]


# === Logical devices ===


def configure_devices(runtime: RuntimeConfig) -> None:
    """Split the CPU into `runtime.devices` logical devices for `mirrored` without GPUs.

    TensorFlow fixes its device layout when its runtime starts (the first op), so this
    must run before anything touches TensorFlow; the CLI calls it first thing. Calling
    it again with the same layout is a no-op; a runtime already started with a different
    layout is a UserError, since nothing can change it in this process.
    """
    wanted = runtime.devices or 1
    if runtime.strategy != "mirrored" or wanted <= 1:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return  # mirrored runs over the GPUs; --devices picks how many (select_strategy)
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == wanted:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(wanted)]
        )
    except RuntimeError as exc:
        # Raised once the runtime has started; fine only if it already has the layout.
        have = len(tf.config.list_logical_devices("CPU"))
        if have == wanted:
            return
        raise UserError(
            f"--strategy mirrored --devices {wanted}: TensorFlow already started with "
            f"{have} CPU device(s); the device split must be set before TensorFlow runs "
            "anything (call shared.distribute.configure_devices first thing)"
        ) from exc


# === Probing the machine ===


@dataclass(frozen=True)
class DeviceProbe:
    """What the machine offers, as far as strategy selection cares.

    `tpu_hint`: a TPU is plausibly configured (TPU env vars or a TPU VM's /dev/accel*).
    `resolve_tpu(name)`: returns a TPU cluster resolver, or None when no TPU resolves;
    only called when a TPU is plausible or asked for, because on a machine without one
    the real resolver can block on the network.
    """

    gpus: int = 0
    cpus: int = 1
    tpu_hint: bool = False
    resolve_tpu: Callable[[str], Any | None] = field(default=lambda name: None, repr=False)
    tf_config: bool = False


def _tpu_vm() -> bool:
    # TPU chips on a Cloud TPU VM (v2-v4). Newer TPU VMs expose vfio devices instead,
    # which GPU VMs have too, so there `runtime.tpu=local` (or TPU_NAME) says it.
    return bool(glob.glob("/dev/accel*"))


def _resolve_tpu(name: str) -> Any | None:
    """A TPUClusterResolver for `name` ('' reads TPU_NAME / COLAB_TPU_ADDR), or None."""
    import tensorflow as tf

    if not name and _tpu_vm() and not os.environ.get("TPU_NAME"):
        name = "local"
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        LOG.info("no TPU resolved for %r: %s", name, exc)
        return None


def probe_devices() -> DeviceProbe:
    """The real machine's probe.

    It must not start TensorFlow's runtime: MultiWorkerMirroredStrategy can only be
    created before that, so CPUs are counted from the logical-device configuration
    (set by configure_devices) rather than by listing the runtime's devices.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    return DeviceProbe(
        gpus=len(tf.config.list_physical_devices("GPU")),
        cpus=len(tf.config.get_logical_device_configuration(cpu) or [cpu]),
        tpu_hint=any(os.environ.get(name) for name in TPU_ENV_HINTS) or _tpu_vm(),
        resolve_tpu=_resolve_tpu,
        tf_config=bool(os.environ.get("TF_CONFIG")),
    )


# === Choosing a strategy (pure) ===


@dataclass(frozen=True)
class StrategyPlan:
    """The strategy to build: its kind, its devices and, for TPUs, the resolver."""

    kind: StrategyKind
    devices: tuple[str, ...] = ()
    tpu_resolver: Any = field(default=None, repr=False)
    reason: str = ""


def plan_strategy(runtime: RuntimeConfig, probe: DeviceProbe) -> StrategyPlan:
    """Decide the strategy for `runtime` on the machine `probe` describes (no TF calls).

    Mistakes a user can fix (too many devices, no TPU, no cluster) are UserErrors.
    """
    name = runtime.strategy
    if name == "auto":
        if runtime.tpu or probe.tpu_hint:
            resolver = probe.resolve_tpu(runtime.tpu or "")
            if resolver is not None:
                return StrategyPlan("tpu", tpu_resolver=resolver, reason="auto: TPU resolved")
        if probe.gpus > 1:
            devices = tuple(f"/gpu:{i}" for i in range(probe.gpus))
            return StrategyPlan("mirrored", devices, reason=f"auto: {probe.gpus} GPUs")
        if probe.gpus == 1:
            return StrategyPlan("one-device", ("/gpu:0",), reason="auto: one GPU")
        return StrategyPlan("default", reason="auto: no accelerator")
    if name == "default":
        return StrategyPlan("default", reason="asked for")
    if name == "one-device":
        device = "/gpu:0" if probe.gpus else "/cpu:0"
        return StrategyPlan("one-device", (device,), reason="asked for")
    if name == "mirrored":
        kind, available = ("gpu", probe.gpus) if probe.gpus else ("cpu", probe.cpus)
        wanted = runtime.devices or available
        if wanted > available:
            hint = (
                ""
                if kind == "gpu"
                else " (logical CPU devices are made by configure_devices before TF starts)"
            )
            raise UserError(
                f"--strategy mirrored: --devices {wanted} asks for more replicas than the "
                f"{available} {kind.upper()} device(s) available{hint}"
            )
        devices = tuple(f"/{kind}:{i}" for i in range(wanted))
        return StrategyPlan("mirrored", devices, reason=f"{wanted} {kind.upper()} replicas")
    if name == "multi-worker":
        if not probe.tf_config and runtime.local_workers:
            raise UserError(
                "--strategy multi-worker --local-workers: this process has no TF_CONFIG; "
                "it should launch the workers (shared.local_workers.launch_local_workers) "
                "rather than train itself"
            )
        if not probe.tf_config:
            raise UserError(
                "--strategy multi-worker needs a cluster: set TF_CONFIG on every worker "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}) or pass --local-workers N '
                "to start N workers on this machine"
            )
        return StrategyPlan("multi-worker", reason="TF_CONFIG")
    if name == "tpu":
        resolver = probe.resolve_tpu(runtime.tpu or "")
        if resolver is None:
            raise UserError(_no_tpu_message(runtime))
        return StrategyPlan("tpu", tpu_resolver=resolver, reason="asked for")
    raise UserError(f"unknown strategy {name!r}")


def _no_tpu_message(runtime: RuntimeConfig, detail: str = "") -> str:
    where = f"runtime.tpu={runtime.tpu!r}" if runtime.tpu else "TPU_NAME / COLAB_TPU_ADDR"
    extra = f": {detail}" if detail else ""
    return (
        f"--strategy tpu: no TPU found ({where}){extra}; on a Cloud TPU VM set "
        "runtime.tpu=local, on a TPU node set runtime.tpu to its name or grpc:// address"
    )


# === Building the strategy ===


def build_strategy(plan: StrategyPlan, runtime: RuntimeConfig) -> tf.distribute.Strategy:
    """Build the `tf.distribute.Strategy` a plan describes (connects to TPUs)."""
    import tensorflow as tf

    if plan.kind == "default":
        return tf.distribute.get_strategy()
    if plan.kind == "one-device":
        return tf.distribute.OneDeviceStrategy(plan.devices[0])
    if plan.kind == "mirrored":
        return tf.distribute.MirroredStrategy(list(plan.devices))
    if plan.kind == "multi-worker":
        # Reads TF_CONFIG; blocks until every worker of the cluster has started.
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = plan.tpu_resolver
    unreachable = _unreachable_grpc_master(resolver)
    if unreachable:
        raise UserError(_no_tpu_message(runtime, unreachable))
    try:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(_no_tpu_message(runtime, detail)) from exc
    return tf.distribute.TPUStrategy(resolver)


def _unreachable_grpc_master(resolver: Any, timeout_s: float = 10.0) -> str | None:
    """Why a TPU node's grpc:// address cannot be reached, or None if it can (or is local).

    Connecting to a dead address makes TensorFlow wait forever, so look first.
    """
    try:
        master = str(resolver.master() or "")
    except (AttributeError, ValueError, RuntimeError):
        return None
    if not master.startswith("grpc://"):
        return None
    host, _, port = master[len("grpc://") :].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return None
    except (OSError, ValueError) as exc:
        return f"cannot reach {master}: {exc}"


def select_strategy(
    runtime: RuntimeConfig, *, probe: DeviceProbe | None = None
) -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` that `runtime.strategy` asks for on this machine."""
    probe = probe if probe is not None else probe_devices()
    plan = plan_strategy(runtime, probe)
    try:
        strategy = build_strategy(plan, runtime)
    except UserError as exc:
        if runtime.strategy != "auto" or plan.kind != "tpu":
            raise
        # auto promised "TPU if one resolves"; a resolver that cannot connect is not one.
        LOG.warning("auto: not using the TPU (%s)", exc)
        plan = plan_strategy(
            runtime.model_copy(update={"tpu": None}), replace(probe, tpu_hint=False)
        )
        strategy = build_strategy(plan, runtime)
    LOG.info("strategy: %s (%s)", describe_strategy(strategy), plan.reason)
    return strategy


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """One line for logs and model cards, e.g. 'MirroredStrategy, 2 replicas (CPU:0, CPU:1)'."""
    name = type(strategy).__name__
    if name.startswith("_Default"):
        name = "default strategy"
    replicas = strategy.num_replicas_in_sync
    try:
        devices = [d.split("/device:")[-1] for d in strategy.extended.worker_devices]
    except (AttributeError, RuntimeError):
        devices = []
    text = f"{name}, {replicas} replica{'s' if replicas != 1 else ''}"
    if devices:
        text += f" ({', '.join(devices)})"
    cluster = _tf_config().get("cluster", {})
    workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
    if workers > 1:
        text += f", {workers} workers, this one #{worker_index()}"
    return text


# === Cluster role (TF_CONFIG) ===


def _tf_config() -> dict[str, Any]:
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from exc


def is_chief() -> bool:
    """Whether this process writes the run directory: the `chief` task, or worker 0 when
    the cluster has no chief, or any process without TF_CONFIG (single-worker runs)."""
    config = _tf_config()
    task = config.get("task") or {}
    kind = task.get("type")
    if kind is None:
        return True
    if kind == "chief":
        return True
    return kind == "worker" and not config.get("cluster", {}).get("chief") and _index(task) == 0


def worker_index() -> int:
    """This process's position among the training tasks: the chief is 0, then the workers.

    0 without TF_CONFIG. Workers are numbered after the chief when the cluster has one,
    so the index is unique across the cluster (for log names and per-worker seeds).
    """
    config = _tf_config()
    task = config.get("task") or {}
    if task.get("type") in (None, "chief"):
        return 0
    has_chief = bool(config.get("cluster", {}).get("chief"))
    return _index(task) + (1 if has_chief and task.get("type") == "worker" else 0)


def _index(task: Mapping[str, Any]) -> int:
    return int(task.get("index", 0))


def in_launched_worker() -> bool:
    """Whether this process was started by `launch_local_workers`."""
    return os.environ.get(LOCAL_WORKER_ENV) == "1"


def should_launch_local_workers(runtime: RuntimeConfig) -> bool:
    """Whether this process should launch `runtime.local_workers` workers and wait for them,
    rather than train itself: multi-worker with --local-workers, outside a worker already."""
    return (
        runtime.strategy == "multi-worker"
        and bool(runtime.local_workers)
        and not in_launched_worker()
        and not os.environ.get("TF_CONFIG")
    )
