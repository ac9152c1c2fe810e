"""Vision training under mirrored and multi-worker strategies, from the CLI.

Each runs in its own process: logical CPU devices and collective ops must be set up
before TensorFlow starts. The loss equivalence of the multi-worker loop with a single
worker is proven on a deterministic model in tests/shared/training; here the point is
that the real pipeline trains, and that only worker 0 writes the run.
"""

import json
import subprocess
import sys

from tests.conftest import REPO, run_cli
from tests.domains.vision.conftest import FAST


def _history_rows(path):
    return (path / "history.csv").read_text().strip().splitlines()[1:]


def test_mirrored_over_two_logical_cpus(tmp_path):
    run_dir = tmp_path / "mirrored"
    result = run_cli(
        "vision",
        "train",
        "--config",
        "digits",
        "--strategy",
        "mirrored",
        "--devices",
        "2",
        "--run-dir",
        str(run_dir),
        *FAST,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = (run_dir / "log.txt").read_text()
    assert "MirroredStrategy, 2 replicas" in log
    assert len(_history_rows(run_dir)) == 2
    assert json.loads((run_dir / "metrics.json").read_text())["accuracy"] > 0.5


def test_multi_worker_on_two_local_workers(tmp_path):
    run_dir = tmp_path / "multi"
    result = run_cli(
        "vision",
        "train",
        "--config",
        "digits",
        "--strategy",
        "multi-worker",
        "--local-workers",
        "2",
        "--run-dir",
        str(run_dir),
        *FAST,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = (run_dir / "log.txt").read_text()
    assert "2 workers, this one #0" in log
    assert "this one #1" not in log  # worker 1 logs to workers/, never to the run's log
    assert "this one #1" in (run_dir / "workers" / "worker-1.log").read_text()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    assert len(_history_rows(run_dir)) == 2
    assert json.loads((run_dir / "metrics.json").read_text())["accuracy"] > 0.5


def test_strategy_flags_that_cannot_work_are_refused(tmp_path):
    result = run_cli(
        "vision",
        "train",
        "--config",
        "digits",
        "--strategy",
        "multi-worker",
        "--run-dir",
        str(tmp_path / "x"),
        *FAST,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "TF_CONFIG" in result.stderr


def test_deterministic_runs_with_one_seed_repeat_exactly(tmp_path):
    command = [sys.executable, "-m", "pipelines.cli", "vision", "train", "--config", "digits",
               "--deterministic", "--seed", "3", *FAST, "--set", "train.epochs=1"]  # fmt: skip
    # Two separate processes, so they train side by side on the two cores.
    processes = {}
    for name in ("a", "b"):
        with (tmp_path / f"{name}.err").open("w") as err:
            processes[name] = subprocess.Popen(
                [*command, "--run-dir", str(tmp_path / name)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
    for name, process in processes.items():
        process.wait(timeout=600)
        assert process.returncode == 0, (tmp_path / f"{name}.err").read_text()[-3000:]
    histories = [(tmp_path / name / "history.csv").read_text() for name in ("a", "b")]
    assert histories[0] == histories[1]
