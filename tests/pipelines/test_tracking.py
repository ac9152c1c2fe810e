"""`--track mlflow`: a finished run logged to a local MLflow store, read back with
MlflowClient; and the `error:` line when MLflow is missing, before TensorFlow loads."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO, errors_before_tensorflow

EPOCHS = 2  # MLflow comes with the dev extra (as the `mlflow` extra), so this runs in CI


def test_track_mlflow_logs_params_epochs_metrics_and_artifacts(tmp_path, monkeypatch, cli):
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    run_dir = tmp_path / "run"
    code, out, err = cli(
        "finance",
        "train",
        "--config",
        "credit",
        "--set",
        f"train.epochs={EPOCHS}",
        "--track",
        "mlflow",
        "--run-dir",
        str(run_dir),
    )
    assert code == 0, err
    record = json.loads((run_dir / "tracking.json").read_text())
    assert record["tracking_uri"] == store and record["experiment"] == "deepfield/finance/credit"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["runtime"]["track"] == "mlflow"

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("deepfield/finance/credit")
    found = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in found] == [record["run_id"]]
    logged = client.get_run(record["run_id"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert logged.info.end_time >= logged.info.start_time

    # Params: the flattened config.
    params = logged.data.params
    assert params["train.epochs"] == str(EPOCHS) and params["model.name"] == "mlp"
    assert params["runtime.track"] == "mlflow" and params["domain"] == "finance"
    assert params["data.source"] == "builtin:german-credit"

    # Metrics: one value per epoch (step = epoch), then the final metrics of metrics.json.
    for name in ("loss", "val_loss", "roc_auc", "val_roc_auc"):
        history = client.get_metric_history(record["run_id"], name)
        assert sorted(m.step for m in history) == list(range(EPOCHS)), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"] == "test"
    final = logged.data.metrics
    assert final["test/roc_auc"] == pytest.approx(metrics["roc_auc"])
    assert final["test/num_examples"] == metrics["num_examples"] == 200
    assert logged.data.tags["domain"] == "finance" and logged.data.tags["task"] == "credit"
    assert logged.data.tags["mlflow.note.content"] == (run_dir / "MODEL_CARD.md").read_text()

    # Artifacts: plots, model card, config, metrics, history and the model.
    top = {a.path for a in client.list_artifacts(record["run_id"])}
    assert {"plots", "model", "MODEL_CARD.md", "config.yaml", "metrics.json"} <= top
    plots = {a.path for a in client.list_artifacts(record["run_id"], "plots")}
    assert plots == {f"plots/{p.name}" for p in (run_dir / "plots").glob("*.png")} != set()
    model = client.list_artifacts(record["run_id"], "model")
    assert [(a.path, a.file_size) for a in model] == [
        ("model/model.keras", (run_dir / "model.keras").stat().st_size)
    ]
    copy = client.download_artifacts(record["run_id"], "metrics.json", str(tmp_path))
    assert json.loads(open(copy).read()) == metrics

    # The same folder logged again, to a file store (MLflow 3 allows one only when asked).
    from shared.tracking import log_run

    files = (tmp_path / "file-store").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", files)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    again = log_run(run_dir)
    assert again["tracking_uri"] == files and again["run_id"] != record["run_id"]
    client = MlflowClient(tracking_uri=files)
    assert client.get_run(again["run_id"]).data.params == params
    losses = client.get_metric_history(again["run_id"], "loss")
    assert [m.step for m in sorted(losses, key=lambda m: m.step)] == list(range(EPOCHS))
    assert {a.path for a in client.list_artifacts(again["run_id"])} == top
    assert json.loads((run_dir / "tracking.json").read_text()) == again


def test_track_without_mlflow_is_one_error_before_tensorflow(tmp_path, cli):
    hide = "__import__('sys').modules.__setitem__('mlflow', None)"  # as if not installed
    errors = errors_before_tensorflow(
        [
            f"({hide}, pipelines.finance.train(config='credit', track='mlflow',"
            f" run_dir={str(tmp_path / 'run')!r}))",
        ],
        cwd=REPO,
    )
    assert errors == [
        "--track mlflow needs MLflow, which is not installed: pip install -e '.[mlflow]'"
    ]
    assert not (tmp_path / "run").exists()
    code, out, err = cli("finance", "train", "--set", "runtime.track=wandb")
    assert code == 2 and "runtime.track" in err and "mlflow" in err
