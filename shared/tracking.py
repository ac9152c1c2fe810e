"""Optional experiment tracking: a finished run, logged to MLflow (`runtime.track: mlflow`).

`--track mlflow` (or `runtime.track: mlflow`) logs each completed run to MLflow's
tracking store: `MLFLOW_TRACKING_URI` when set, else MLflow's own default (a local
`sqlite:///mlflow.db` in the working folder, artifacts under `./mlruns`, in MLflow 3).
One MLflow run per run folder, in the experiment `deepfield/<domain>/<task>`, holding

- params: the config flattened to dotted keys (`train.learning_rate`), as HParams gets it;
- metrics: every history.csv column at each epoch (Keras runs, step = epoch, 0-based as
  in TensorBoard) or evaluation (RL, step = env step), then the final metrics of
  metrics.json as `<split>/<metric>` (`test/accuracy`) at the last step;
- artifacts: plots/, MODEL_CARD.md (also the run's MLflow description), config.yaml,
  metrics.json, history.csv, and model.keras under `model/`;
- tags: domain, task and the run folder; start and end times from status.json.

The per-epoch metrics are replayed from history.csv when the run completes, not logged
live by a Keras callback: every domain writes history.csv (RL's custom loop and the
multi-worker loop included), a run resumed after a kill still lands as one MLflow run
with all its epochs, and nothing reaches the tracker for a run that then fails. The
price is that MLflow shows a run only once it has finished; TensorBoard shows it live.

MLflow is an optional extra (`pip install -e '.[mlflow]'`), imported only here and only
when tracking is on. `check_tracking` runs before TensorFlow loads: a missing package or
a store that cannot be opened is a UserError (exit 2) before any training. Logging at
the end never fails a finished run: an error there is a warning, and the run can be
logged again with `log_run`.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.errors import UserError
from shared.run_dir import RunDir, write_json

LOG = logging.getLogger("deepfield")
TRACKERS = ("none", "mlflow")
EXTRA = "pip install -e '.[mlflow]'"
RECORD = "tracking.json"  # in the run folder: where the run was logged
EXPERIMENT_PREFIX = "deepfield"
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
BATCH_PARAMS = 100  # MLflow's limits on one log_batch call
BATCH_METRICS = 1000
# Characters MLflow accepts in param and metric names (others become `_`).
NAME_UNSAFE = re.compile(r"[^\w\-. /:]+")
ARTIFACT_FILES = ("MODEL_CARD.md", "config.yaml", "metrics.json", "history.csv")
STEP_COLUMNS = ("epoch", "step")


# === Before training ===
def tracker(config: Any) -> str:
    """The config's `runtime.track` ("none" when the config has no runtime section)."""
    runtime = getattr(config, "runtime", None)
    return str(getattr(runtime, "track", "none") or "none")


def check_tracking(config: Any, domain: str) -> None:
    """Refuse, before TensorFlow loads, a tracker that could not log the run: MLflow not
    installed (naming the extra), or a tracking store that cannot be opened (the run's
    experiment is created here, so a store that works now works at the end)."""
    if tracker(config) != "mlflow":
        return
    if importlib.util.find_spec("mlflow") is None:
        raise UserError(f"--track mlflow needs MLflow, which is not installed: {EXTRA}")
    uri = "MLFLOW_TRACKING_URI"
    try:
        uri = tracking_uri()
        if uri.startswith("sqlite:") and any(
            importlib.util.find_spec(name) is None for name in ("sqlalchemy", "alembic")
        ):
            raise UserError(
                f"--track mlflow: the tracking store {uri} needs SQLAlchemy and Alembic, "
                f"which are not installed: {EXTRA}"
            )
        _experiment_id(_client(uri), experiment_name(domain, getattr(config, "task", None)))
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot log"
        message = f"--track mlflow: cannot use the tracking store {uri}: {_first(err)}"
        raise UserError(message) from err


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else MLflow's default store (resolved as MLflow resolves it)."""
    import mlflow

    return str(mlflow.get_tracking_uri())


def experiment_name(domain: str | None, task: str | None) -> str:
    """`deepfield/<domain>/<task>`: runs of one kind compare in one MLflow experiment."""
    return "/".join(str(p) for p in (EXPERIMENT_PREFIX, domain, task) if p)


# === After training ===
def track_finished(run: RunDir, config: Any, domain: str) -> dict[str, str] | None:
    """Log a completed run to the configured tracker; a failure is a warning (the run on
    disk is complete either way). Returns what `log_run` returns, None if not logged."""
    if tracker(config) != "mlflow":
        return None
    try:
        return log_run(run, domain=domain)
    except Exception as err:  # noqa: BLE001 - tracking never fails a finished run
        LOG.warning(
            "MLflow: %s was not logged: %s (the run is complete; log it again with "
            "shared.tracking.log_run)",
            run.path,
            _first(err),
        )
        return None


def log_run(run: RunDir | str | Path, domain: str | None = None) -> dict[str, str]:
    """Log the run folder to MLflow as one MLflow run; returns {"tracking_uri",
    "experiment_id", "experiment", "run_id"}, also written to the folder's tracking.json.

    Logging a folder again makes a new MLflow run (the old one is left as it is).
    """
    from mlflow.entities import Metric, Param, RunStatus

    run = run if isinstance(run, RunDir) else RunDir(run)
    status = run.status()
    metrics = run.read_metrics() if run.metrics_path.is_file() else {}
    domain = domain or status.get("domain") or metrics.get("domain")
    task = status.get("task") or metrics.get("task")
    uri = tracking_uri()
    client = _client(uri)
    experiment = experiment_name(domain, task)
    experiment_id = _experiment_id(client, experiment)
    started, finished = _millis(status.get("started")), _millis(status.get("finished"))
    tags = {
        "domain": str(domain or ""),
        "task": str(task or ""),
        "deepfield.run_dir": str(run.path.resolve()),
    }
    if run.model_card_path.is_file():
        tags["mlflow.note.content"] = run.model_card_path.read_text()
    created = client.create_run(
        experiment_id,
        start_time=started,
        tags=tags,
        run_name=run.path.resolve().name,
    )
    run_id = created.info.run_id
    try:
        params = [Param(_name(k), _param_value(v)) for k, v in _params(run).items()]
        for i in range(0, len(params), BATCH_PARAMS):
            client.log_batch(run_id, params=params[i : i + BATCH_PARAMS])
        stamp = finished or int(time.time() * 1000)
        values = [Metric(_name(k), v, stamp, step) for k, v, step in _metric_series(run, metrics)]
        for i in range(0, len(values), BATCH_METRICS):
            client.log_batch(run_id, metrics=values[i : i + BATCH_METRICS])
        _log_artifacts(client, run_id, run)
    except BaseException:
        client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id, end_time=finished)
    record = {
        "tracker": "mlflow",
        "tracking_uri": uri,
        "experiment": experiment,
        "experiment_id": str(experiment_id),
        "run_id": run_id,
    }
    write_json(run.path / RECORD, record)
    LOG.info("MLflow: logged %s as run %s of experiment %s (%s)", run.path, run_id, experiment, uri)
    return record


def history_series(path: Path) -> list[tuple[str, float, int]]:
    """(metric, value, step) for every number of history.csv; the step is the row's
    `epoch` (Keras) or `step` (RL's env steps), else its row number."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    step_column = next((c for c in STEP_COLUMNS if rows and c in rows[0]), None)
    series = []
    for index, row in enumerate(rows):
        try:
            step = int(float(row[step_column])) if step_column else index
        except (TypeError, ValueError):
            step = index
        for key, text in row.items():
            if key == step_column or key is None:
                continue
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue  # blanks and "NA" for metrics an epoch did not produce
            series.append((key, value, step))
    return series


def _metric_series(run: RunDir, metrics: dict[str, Any]) -> list[tuple[str, float, int]]:
    from shared.tensorboard_summaries import final_step, metric_scalars, tag_part

    series = history_series(run.history_path)
    split = tag_part(str(metrics.get("split") or "test"))
    step = final_step(run)
    final = metric_scalars(
        {k: v for k, v in metrics.items() if k not in ("split", "task", "domain")}, split
    )
    return series + [(k, v, step) for k, v in final.items() if v == v]  # NaN left out


def _params(run: RunDir) -> dict[str, Any]:
    from shared.tensorboard_summaries import run_hparams

    return run_hparams(run)


def _log_artifacts(client: Any, run_id: str, run: RunDir) -> None:
    for name in ARTIFACT_FILES:
        if (run.path / name).is_file():
            client.log_artifact(run_id, str(run.path / name))
    if run.plots.is_dir() and any(run.plots.iterdir()):
        client.log_artifacts(run_id, str(run.plots), artifact_path="plots")
    if run.model_path.is_file():
        client.log_artifact(run_id, str(run.model_path), artifact_path="model")


# === MLflow helpers ===
def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str) -> str:
    """The experiment's id, created if new (a concurrent creation is tolerated)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise UserError(
                f"--track mlflow: the MLflow experiment {name!r} is deleted; restore it "
                f"(mlflow experiments restore --experiment-id {found.experiment_id}) or "
                "delete it for good"
            )
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _millis(stamp: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(stamp)).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _name(key: str) -> str:
    return NAME_UNSAFE.sub("_", str(key)).strip() or "_"


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _first(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def tracking_record(run: RunDir | str | Path) -> dict[str, Any] | None:
    """The run folder's tracking.json (where it was logged), None if never logged."""
    path = Path(run.path if isinstance(run, RunDir) else run) / RECORD
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
