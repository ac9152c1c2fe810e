"""The life of a training run, the same for every domain.

Resolve the run directory, refuse to mix two configs in one folder, resume what a kill
interrupted, start local workers for a one-machine multi-worker run, mark the run
complete only once its model and metrics exist, keep every failure's traceback in the
run's log, and once a run completes, write its TensorBoard summaries and (with
`runtime.track: mlflow`) log it to MLflow (shared.tracking).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shared.config import ConfigModel, dump_yaml, to_plain
from shared.errors import UserError
from shared.run_dir import RunDir, write_atomic

LOG = logging.getLogger("deepfield")
WORKER_LOGS = "workers"  # logs of workers other than worker 0, inside the run folder


def default_run_dir(domain: str, task: str) -> Path:
    return Path("runs") / domain / task / time.strftime("%Y%m%d-%H%M%S")


def prepare_run(
    path: Path, config: ConfigModel, domain: str, *, write: bool = True, call: str | None = None
) -> tuple[RunDir, bool]:
    """Open or create the run folder; returns (run, already_complete).

    Rerunning the same command on the same folder resumes it; a different config in
    the same folder is refused so two experiments never share checkpoints.
    """
    run = RunDir(path)
    if run.path.exists() and not run.path.is_dir():
        raise UserError(f"--run-dir {run.path} is a file, not a folder")
    if run.config_path.is_file():
        saved = yaml.safe_load(run.config_path.read_text())
        if saved != to_plain(config):
            changed = sorted(_diff_keys(saved or {}, to_plain(config)))
            raise UserError(
                f"{run.path} holds a run with a different config (differs in: "
                f"{', '.join(changed[:8])}); use a new --run-dir"
            )
        if run.is_complete():
            return run, True
    elif run.path.is_dir() and any(p.name != WORKER_LOGS for p in run.path.iterdir()):
        raise UserError(f"--run-dir {run.path} exists and is not a run directory")
    if write:
        run.prepare()
        write_atomic(run.config_path, dump_yaml(config))
        from shared.provenance import environment

        run.set_status(
            "running",
            domain=domain,
            task=getattr(config, "task", domain),
            pid=os.getpid(),
            started=time.strftime("%Y-%m-%dT%H:%M:%S"),
            environment=environment(call),
        )
    return run, False


def _diff_keys(a: Any, b: Any, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys: set[str] = set()
        for key in set(a) | set(b):
            keys |= _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return keys
    return set() if a == b else {prefix.rstrip(".")}


def launch_local(domain: str, config: ConfigModel, run_path: Path) -> int:
    """Run this training as `local_workers` processes on localhost (multi-worker)."""
    from shared.local_workers import launch_local_workers

    # Resolved once here, so every worker trains the same config into the same folder.
    with tempfile.TemporaryDirectory(prefix="deepfield-workers-") as tmp:
        resolved = Path(tmp) / "config.yaml"
        resolved.write_text(dump_yaml(config))
        command = [
            sys.executable,
            "-m",
            "pipelines.cli",
            domain,
            "train",
            "--config",
            str(resolved),
            "--run-dir",
            str(run_path),
        ]
        LOG.info("starting %d local workers", config.runtime.local_workers)
        return launch_local_workers(
            command, config.runtime.local_workers, log_dir=Path(run_path) / WORKER_LOGS
        )


def execute(
    domain: str,
    config: ConfigModel,
    run_path: Path,
    train_fn: Callable[[ConfigModel, RunDir], dict[str, Any]],
    call: str | None = None,
) -> RunDir | None:
    """Train into `run_path` (creating or resuming it) and mark it complete.

    `call` is the Python API call that asked for it, recorded where there is no
    `deepfield` command line (a notebook or a script).

    Returns None in a multi-worker worker other than the chief: it helped train, but
    the run is the chief's to finish.
    """
    from shared.distribute import configure_devices, is_chief, should_launch_local_workers
    from shared.tracking import check_tracking

    if is_chief():  # the process that will log the run: refuse what could not, before TF
        check_tracking(config, domain)
    configure_devices(config.runtime)
    if should_launch_local_workers(config.runtime):
        prepare_run(run_path, config, domain, write=False)
        code = launch_local(domain, config, run_path)
        if code != 0:
            raise UserError(
                f"a local worker failed with exit code {code}; see {run_path}/log.txt "
                f"and {run_path}/{WORKER_LOGS}/"
            )
        return RunDir.open(run_path)
    chief = is_chief()
    if not chief:
        # Other workers train beside the chief but never touch the run directory.
        train_fn(config, RunDir(run_path))
        return None
    fresh = not Path(run_path).exists()
    run, complete = prepare_run(run_path, config, domain, call=call)
    if complete:
        LOG.info("run %s is already complete; nothing to do", run.path)
        return run
    handler = run.attach_log()
    started = time.time()
    finished = False
    try:
        LOG.info("training %s into %s", domain, run.path)
        train_fn(config, run)
        wall = round(time.time() - started + run.status().get("wall_seconds", 0.0), 1)
        run.set_status("complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S"), wall_seconds=wall)
        finished = True
    except KeyboardInterrupt:
        wall = round(time.time() - started + run.status().get("wall_seconds", 0.0), 1)
        run.set_status("interrupted", wall_seconds=wall)
        raise
    except UserError:
        run.set_status("failed")
        if fresh and not any(run.checkpoints.rglob("training_metadata.json")):
            # Bad input found before any training: leave nothing half-written.
            RunDir.detach_log(handler)
            handler = None
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    except Exception:
        LOG.exception("training failed")
        run.set_status("failed")
        raise
    finally:
        if finished:  # config, metrics, plots, card, graph: a warning if any fails
            from shared.tensorboard_summaries import write_run_summaries

            write_run_summaries(run)
            from shared.tracking import track_finished  # --track mlflow; never fails a run

            track_finished(run, config, domain)
        if handler:
            RunDir.detach_log(handler)
    return run
