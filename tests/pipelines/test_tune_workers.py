"""`tune --workers N` (KerasTuner's distributed tuning, pipelines.tune_workers): its
options checked before TensorFlow, the space file the workers read, a failing worker
stopping the search, and real 2-worker searches on finance credit (1 epoch a trial)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, errors_before_tensorflow

CREDIT = ["finance", "tune", "--config", "credit", "--set", "train.epochs=1", "--seed", "5"]


def test_bad_worker_options_are_one_error_before_tensorflow(tmp_path, cli):
    call = "pipelines.finance.tune(config='credit', trials=2, run_dir='s', {})"
    options = [
        "workers=3",
        "workers=0",
        "worker_id='tuner1'",
        "worker_id='tuner1', oracle_address='nohost'",
        "worker_id='tuner1', oracle_address='h:8000', workers=2",
        "worker_id='my-chief-2', oracle_address='h:8000'",
        "size_objective='flops'",
    ]
    errors = errors_before_tensorflow([call.format(o) for o in options], tmp_path)
    assert "--workers 3 is more than --trials 2" in errors[0]
    assert "--workers must be at least 1" in errors[1]
    assert "--worker-id and --oracle-address go together" in errors[2]
    assert "--oracle-address 'nohost': expected HOST:PORT" in errors[3]
    assert "--workers starts its own chief and workers" in errors[4]
    assert "'chief' for the oracle" in errors[5]
    assert "--size-objective 'flops'" in errors[6]
    assert not (tmp_path / "s").exists()
    code, _, err = cli(*CREDIT, "--trials", "2", "--workers", "3", "--run-dir", str(tmp_path))
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "--workers 3 is more than --trials 2" in lines[0]


def test_the_space_file_workers_read_is_the_same_space(tmp_path):
    import pipelines
    from shared.search.space import Param, Space, read_space

    space = Space(
        [
            Param("train.learning_rate", "float", 1e-4, 1e-2, sampling="log"),
            Param("train.batch_size", "int", 16, 64, step=16),
            Param("model.hidden", "choice", values=("[8]", "[16, 8]"), encoded=True),
            Param("model.dropout", "choice", values=(0.1, 0.3)),
            Param("model.log_skewed", "bool"),
        ]
    )
    base = pipelines.finance.resolve_config("credit")
    path = tmp_path / "space.yaml"
    path.write_text(space.to_yaml())
    again = read_space(path, type(base), base)
    assert again.params == space.params


def credit_search(run_dir: Path, **options):
    """A planned (not started) 2-trial random search of finance credit: no TensorFlow."""
    import pipelines
    from pipelines import tune

    defaults = dict(config="credit", data=None, overrides=[], task=None, space=None)
    defaults |= dict(trials=2, algorithm="random", max_time=None, objective=None, seed=None)
    defaults |= dict(population=10, sample_size=3)
    return tune.plan(pipelines.finance, run_dir=run_dir, **{**defaults, **options})


def test_a_failing_worker_stops_the_others_with_its_error(tmp_path, monkeypatch):
    from pipelines import tune_workers
    from shared.errors import UserError

    report = tmp_path / "env.json"
    scripts = {
        "tuner0": "import json, os, sys, time\n"
        f"json.dump(dict(os.environ), open({str(report)!r}, 'w'))\n"
        "time.sleep(60)\n",
        "tuner1": "import sys\nprint('error: no column default', file=sys.stderr)\nsys.exit(2)\n",
    }

    def command(search, folder, tuner_id, address):
        return [sys.executable, "-c", scripts[tuner_id]]

    monkeypatch.setattr(tune_workers, "worker_command", command)
    search = credit_search(tmp_path / "search", workers=2)
    from shared.search.space import Param, Space

    started = time.monotonic()
    with pytest.raises(UserError) as failed:
        tune_workers.run_local_workers(search, Space([Param("model.log_skewed", "bool")]), 1)
    assert time.monotonic() - started < 30  # tuner0 was stopped, not waited for
    assert "worker tuner1 stopped with exit code 2: no column default" in str(failed.value)
    assert "rerun the same command to resume" in str(failed.value)
    env = json.loads(report.read_text())
    share = str(tune_workers.thread_share(2))
    assert env["TF_NUM_INTRAOP_THREADS"] == share and env["OMP_NUM_THREADS"] == share
    assert env[tune_workers.PARENT_ENV] == str(os.getpid())
    assert not any(k.startswith("KERASTUNER_") for k in env)  # the command line says
    assert (tmp_path / "search" / "workers" / "base.yaml").is_file()
    assert tune_workers.thread_share(2, cores=2) == 1
    assert tune_workers.thread_share(3, cores=16) == 5
    assert tune_workers.thread_share(4, cores=2) == 1


def _worker_pids(run_dir: Path) -> list[int]:
    """Processes whose command line is a worker of the search in `run_dir`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            words = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--worker-id" in words and str(run_dir).encode() in words:
            found.append(int(proc.name))
    return found


@pytest.mark.large
def test_two_workers_train_distinct_trials_with_their_latency(tmp_path, cli):
    """4 trials from 2 worker processes; the latency front; no worker left behind."""
    from pipelines.tune_results import pareto_front

    search = tmp_path / "search"
    args = [*CREDIT, "--trials", "4", "--workers", "2", "--size-objective", "latency"]
    code, out, err = cli(*args, "--run-dir", str(search))
    assert code == 0, err[-3000:]
    data = json.loads((search / "search.json").read_text())
    trials = data["trials"]
    assert [t["status"] for t in trials] == ["complete"] * 4
    assert len({json.dumps(t["values"], sort_keys=True) for t in trials}) == 4
    assert {t["worker"] for t in trials} == {"tuner0", "tuner1"}
    for trial in trials:
        assert json.loads((Path(trial["run"]) / "status.json").read_text())["state"] == "complete"
        assert trial["parameters"] > 0 and 0 < trial["latency_ms"] < 1000
    assert data["size_objective"] == "latency"
    assert data["pareto"] == pareto_front(trials, "min", "latency_ms") and data["pareto"]
    assert "latency (ms)" in out and "worker" in out and "batch-1 latency" in out
    assert not _worker_pids(search.resolve())


@pytest.mark.large
def test_an_interrupted_parallel_search_stops_its_workers_and_resumes(tmp_path):
    """Ctrl-C on the chief after the first trial: every worker stops; the same command
    resumes, keeping the finished trial and finishing the one cut short."""
    search = (tmp_path / "search").resolve()
    command = [sys.executable, "-m", "pipelines.cli", *CREDIT, "--trials", "3", "--workers", "2"]
    command += ["--run-dir", str(search)]
    chief = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        path = search / "search.json"
        if path.is_file() and "complete" in {
            t["status"] for t in json.loads(path.read_text())["trials"]
        }:
            break
        time.sleep(0.5)
    chief.send_signal(signal.SIGINT)
    _, err = chief.communicate(timeout=120)
    assert chief.returncode == 130, err.decode()[-3000:]
    time.sleep(1)
    assert not _worker_pids(search)
    first = json.loads((search / "search.json").read_text())["trials"]
    done = {
        t["id"]: (search / "trials" / t["id"] / "status.json").read_text()
        for t in first
        if t["status"] == "complete"
    }
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = json.loads((search / "search.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["complete"] * 3
    for trial_id, status in done.items():  # finished trials were not trained again
        assert (search / "trials" / trial_id / "status.json").read_text() == status
