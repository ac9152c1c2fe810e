"""Strategy selection over fake machines, cluster roles, local worker launches, and a real
MirroredStrategy over two logical CPUs (in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

from shared.distribute import (
    DeviceProbe,
    describe_strategy,
    in_launched_worker,
    is_chief,
    plan_strategy,
    select_strategy,
    should_launch_local_workers,
    worker_index,
)
from shared.errors import UserError
from shared.local_workers import LOCAL_WORKER_ENV, launch_local_workers, local_tf_config
from shared.training.settings import RuntimeConfig

HERE = Path(__file__).resolve().parent


def runtime(**kw) -> RuntimeConfig:
    return RuntimeConfig(**kw)


def no_resolver(name: str):
    raise AssertionError(f"the TPU resolver must not be tried here (asked for {name!r})")


class FakeResolver:
    """Stands in for a TPUClusterResolver; remembers the name it was asked for."""

    def __init__(self):
        self.names: list[str] = []

    def __call__(self, name: str):
        self.names.append(name)
        return self


CPU = DeviceProbe(gpus=0, cpus=1, resolve_tpu=no_resolver)


# === auto ===


def test_auto_on_cpu_is_default_without_trying_tpu():
    plan = plan_strategy(runtime(strategy="auto"), CPU)
    assert plan.kind == "default"


def test_auto_with_one_gpu_is_one_device_on_it():
    plan = plan_strategy(runtime(), DeviceProbe(gpus=1, resolve_tpu=no_resolver))
    assert (plan.kind, plan.devices) == ("one-device", ("/gpu:0",))


def test_auto_with_two_gpus_is_mirrored_over_both():
    plan = plan_strategy(runtime(), DeviceProbe(gpus=2, resolve_tpu=no_resolver))
    assert (plan.kind, plan.devices) == ("mirrored", ("/gpu:0", "/gpu:1"))


def test_auto_picks_a_tpu_that_resolves():
    resolver = FakeResolver()
    plan = plan_strategy(runtime(), DeviceProbe(gpus=2, tpu_hint=True, resolve_tpu=resolver))
    assert plan.kind == "tpu" and plan.tpu_resolver is resolver
    assert resolver.names == [""]  # '' lets the resolver read TPU_NAME / COLAB_TPU_ADDR


def test_auto_passes_the_configured_tpu_name_even_without_env_hints():
    resolver = FakeResolver()
    plan = plan_strategy(runtime(tpu="my-tpu"), DeviceProbe(resolve_tpu=resolver))
    assert plan.kind == "tpu" and resolver.names == ["my-tpu"]


def test_auto_falls_back_when_the_tpu_hint_does_not_resolve():
    probe = DeviceProbe(gpus=2, tpu_hint=True, resolve_tpu=lambda name: None)
    assert plan_strategy(runtime(), probe).kind == "mirrored"


# === named strategies ===


def test_default_is_default_even_with_gpus():
    probe = DeviceProbe(gpus=4, resolve_tpu=no_resolver)
    assert plan_strategy(runtime(strategy="default"), probe).kind == "default"


@pytest.mark.parametrize(("gpus", "device"), [(0, "/cpu:0"), (2, "/gpu:0")])
def test_one_device_uses_the_first_gpu_else_the_cpu(gpus, device):
    plan = plan_strategy(runtime(strategy="one-device"), DeviceProbe(gpus=gpus))
    assert (plan.kind, plan.devices) == ("one-device", (device,))


def test_mirrored_on_cpu_uses_the_logical_cpus():
    plan = plan_strategy(runtime(strategy="mirrored", devices=2), DeviceProbe(cpus=2))
    assert (plan.kind, plan.devices) == ("mirrored", ("/cpu:0", "/cpu:1"))
    all_of_them = plan_strategy(runtime(strategy="mirrored"), DeviceProbe(cpus=3))
    assert all_of_them.devices == ("/cpu:0", "/cpu:1", "/cpu:2")


def test_mirrored_prefers_gpus_and_takes_as_many_as_asked():
    plan = plan_strategy(runtime(strategy="mirrored", devices=2), DeviceProbe(gpus=4, cpus=8))
    assert plan.devices == ("/gpu:0", "/gpu:1")


@pytest.mark.parametrize(
    ("probe", "kind"), [(DeviceProbe(cpus=2), "CPU"), (DeviceProbe(gpus=2, cpus=8), "GPU")]
)
def test_mirrored_with_more_devices_than_exist_is_a_user_error(probe, kind):
    with pytest.raises(UserError, match=rf"--devices 4 .* 2 {kind} device"):
        plan_strategy(runtime(strategy="mirrored", devices=4), probe)


def test_multi_worker_without_tf_config_is_a_user_error_naming_both_ways():
    with pytest.raises(UserError, match="TF_CONFIG") as error:
        plan_strategy(runtime(strategy="multi-worker"), DeviceProbe(tf_config=False))
    assert "--local-workers" in str(error.value)


def test_multi_worker_launcher_process_must_not_select_a_strategy():
    with pytest.raises(UserError, match="launch"):
        plan_strategy(runtime(strategy="multi-worker", local_workers=2), DeviceProbe())


def test_multi_worker_with_tf_config():
    plan = plan_strategy(runtime(strategy="multi-worker"), DeviceProbe(tf_config=True))
    assert plan.kind == "multi-worker"


def test_tpu_without_one_is_a_user_error():
    probe = DeviceProbe(resolve_tpu=lambda name: None)
    with pytest.raises(UserError, match=r"^--strategy tpu: no TPU found"):
        plan_strategy(runtime(strategy="tpu"), probe)


def test_tpu_with_a_resolver():
    resolver = FakeResolver()
    plan = plan_strategy(
        runtime(strategy="tpu", tpu="grpc://10.0.0.2:8470"), DeviceProbe(resolve_tpu=resolver)
    )
    assert plan.kind == "tpu" and resolver.names == ["grpc://10.0.0.2:8470"]


# === building (only what this machine can build in-process) ===


def test_select_default_and_one_device_strategies():
    default = select_strategy(runtime(strategy="default"), probe=CPU)
    assert default is tf.distribute.get_strategy()
    assert "1 replica" in describe_strategy(default)
    one = select_strategy(runtime(strategy="one-device"), probe=CPU)
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    assert describe_strategy(one).startswith("OneDeviceStrategy, 1 replica (CPU:0)")


def test_select_tpu_without_one_raises_the_user_error():
    with pytest.raises(UserError, match="no TPU found"):
        select_strategy(runtime(strategy="tpu"), probe=DeviceProbe(resolve_tpu=lambda n: None))


def test_tpu_node_address_that_nothing_answers_is_a_user_error_not_a_hang():
    class DeadNode:
        def master(self) -> str:
            return "grpc://127.0.0.1:1"  # nothing listens on port 1

    probe = DeviceProbe(resolve_tpu=lambda name: DeadNode())
    with pytest.raises(UserError, match=r"no TPU found .*cannot reach grpc://127\.0\.0\.1:1"):
        select_strategy(runtime(strategy="tpu", tpu="grpc://127.0.0.1:1"), probe=probe)


def test_auto_falls_back_when_the_resolved_tpu_does_not_connect():
    class DeadNode:
        def master(self) -> str:
            return "grpc://127.0.0.1:1"

    probe = DeviceProbe(tpu_hint=True, resolve_tpu=lambda name: DeadNode())
    strategy = select_strategy(runtime(strategy="auto"), probe=probe)
    assert strategy is tf.distribute.get_strategy()


# === cluster roles ===


@pytest.mark.parametrize(
    ("config", "chief", "index"),
    [
        (None, True, 0),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True, 0),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False, 1),
        ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief"}}, True, 0),
        (
            {
                "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
            1,
        ),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator", "index": 0}}, False, 0),
    ],
)
def test_chief_and_worker_index_from_tf_config(monkeypatch, config, chief, index):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert is_chief() is chief
    assert worker_index() == index


def test_bad_tf_config_is_a_user_error(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG"):
        is_chief()


def test_when_to_launch_local_workers(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv(LOCAL_WORKER_ENV, raising=False)
    wanted = runtime(strategy="multi-worker", local_workers=2)
    assert should_launch_local_workers(wanted)
    assert not should_launch_local_workers(runtime(strategy="multi-worker"))
    assert not should_launch_local_workers(runtime(strategy="mirrored", local_workers=2))
    monkeypatch.setenv(LOCAL_WORKER_ENV, "1")
    assert in_launched_worker() and not should_launch_local_workers(wanted)


def test_local_tf_config_names_every_worker_and_this_one():
    config = json.loads(local_tf_config([1111, 2222], 1))
    assert config == {
        "cluster": {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"]},
        "task": {"type": "worker", "index": 1},
    }


# === launching (plain Python workers: fast, no TensorFlow) ===

REPORT = f"""
import json, os, sys
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
print("hello from", index)
with open(sys.argv[1] + "." + str(index), "w") as handle:
    json.dump({{"tf_config": os.environ["TF_CONFIG"], "flag": os.environ.get("{LOCAL_WORKER_ENV}"),
               "extra": os.environ.get("EXTRA")}}, handle)
"""


def test_launch_gives_each_worker_its_tf_config_and_logs_the_others(tmp_path, capfd):
    out = tmp_path / "report"
    code = launch_local_workers(
        [sys.executable, "-c", REPORT, str(out)], 2, env={"EXTRA": "x"}, log_dir=tmp_path / "logs"
    )
    assert code == 0
    reports = [json.loads(Path(f"{out}.{i}").read_text()) for i in range(2)]
    configs = [json.loads(r["tf_config"]) for r in reports]
    assert [c["task"]["index"] for c in configs] == [0, 1]
    assert configs[0]["cluster"] == configs[1]["cluster"]
    ports = {address.rsplit(":", 1)[1] for address in configs[0]["cluster"]["worker"]}
    assert len(ports) == 2
    assert all(r["flag"] == "1" and r["extra"] == "x" for r in reports)
    # Worker 0 talks to the terminal; worker 1 to its log file.
    assert "hello from 0" in capfd.readouterr().out
    assert "hello from 1" in (tmp_path / "logs" / "worker-1.log").read_text()


def test_a_failing_worker_stops_the_others_and_its_code_is_returned(tmp_path):
    script = (
        "import json, os, sys, time\n"
        "index = json.loads(os.environ['TF_CONFIG'])['task']['index']\n"
        "sys.exit(3) if index == 1 else time.sleep(60)\n"
    )
    start = time.monotonic()
    code = launch_local_workers([sys.executable, "-c", script], 2, log_dir=tmp_path)
    assert code == 3
    assert time.monotonic() - start < 30  # worker 0 was terminated, not waited for


# === a real MirroredStrategy over two logical CPUs ===


def test_mirrored_over_two_logical_cpus_runs_fit(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(tmp_path)}
    env.pop("TF_CONFIG", None)
    done = subprocess.run(
        [sys.executable, str(HERE / "mirrored_fit_script.py")],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "MirroredStrategy"
    assert result["replicas"] == 2 and result["logical_cpus"] == 2
    assert result["description"] == "MirroredStrategy, 2 replicas (CPU:0, CPU:1)"
    assert 0 < result["fit_loss"] < 5
    # The custom loop takes the same steps as Keras fit on equal per-replica batches.
    assert result["loop_loss"] == pytest.approx(result["fit_loss"], rel=1e-5)
    assert "before TensorFlow" in result["late_error"]
