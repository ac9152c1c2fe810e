"""Run records every domain shares: metrics contract, data splits, input contract,
provenance, and the one model loader's message."""

import json

import pytest

from shared.errors import UserError
from shared.input_contract import InputContract, InputSpec
from shared.run_dir import RunDir


def test_metrics_json_takes_numbers_under_snake_case_keys_only(tmp_path):
    run = RunDir(tmp_path)
    run.write_metrics(
        {"accuracy": 0.5, "num_examples": 10.0, "split": "test", "loss": float("nan")}
    )
    assert json.loads(run.metrics_path.read_text()) == {
        "accuracy": 0.5,
        "num_examples": 10,
        "split": "test",
        "loss": None,
    }
    with pytest.raises(ValueError, match="must be a number"):
        run.write_metrics({"policy": "best"})
    with pytest.raises(ValueError, match="not snake_case"):
        run.write_metrics({"recall_at_fpr_0.01": 0.3})


def test_data_splits_have_one_schema(tmp_path):
    run = RunDir(tmp_path)
    run.write_splits(
        "csv:x.csv", {"train": 8, "test": {"size": 2, "class_counts": {"a": 2}}}, seed=3
    )
    record = json.loads(run.splits_path.read_text())
    assert record == {
        "source": "csv:x.csv",
        "splits": {"train": {"size": 8}, "test": {"size": 2, "class_counts": {"a": 2}}},
        "seed": 3,
    }
    run.write_splits("csv:x.csv", {"train": 8, "test": 2}, class_counts={"test": {"a": 2}}, seed=3)
    assert json.loads(run.splits_path.read_text()) == record  # the splitter's counts merged


def test_input_contract_round_trips_and_names_a_missing_file(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(UserError, match="has no inputs.json"):
        InputContract.read(run)
    contract = InputContract(
        "vision", "classify", [InputSpec("image", "uint8", [8, 8, 1])], ["a", "b"]
    )
    contract.write(run)
    again = InputContract.read(run)
    assert again == contract and again.input("image").shape == [8, 8, 1]


def test_run_records_versions_command_and_wall_time(tmp_path):
    from pipelines.runner import execute
    from shared.config import ConfigModel
    from shared.model_card import write_model_card
    from shared.training import RuntimeConfig

    class Config(ConfigModel):
        task: str = "t"
        runtime: RuntimeConfig = RuntimeConfig()

    def train(config, run):
        write_model_card(
            run, title="t", summary="s", data={}, model={}, training={}, metrics={},
            intended_use="tests", limitations=[],
        )  # fmt: skip
        run.model_path.write_bytes(b"x")
        return {}

    run = execute("toy", Config(), tmp_path / "run", train, call="pipelines.toy.train()")
    status = run.status()
    assert status["state"] == "complete" and status["wall_seconds"] >= 0
    env = status["environment"]
    assert env["tensorflow"].startswith("2.") and env["keras"].startswith("3.")
    assert env["python"].count(".") == 2 and env["command"] == "pipelines.toy.train()"
    card = run.model_card_path.read_text()
    assert "## Environment" in card and "| tensorflow |" in card and "training wall time" in card


def test_load_model_says_which_import_is_missing(tmp_path, monkeypatch):
    import keras

    from shared import model_io

    path = tmp_path / "model.keras"
    path.write_bytes(b"x")

    def fail(*args, **kwargs):
        raise TypeError("Could not locate class 'ConvNormAct'. Make sure custom classes ...")

    monkeypatch.setattr(keras.models, "load_model", fail)
    with pytest.raises(UserError, match="import shared.zoo before keras.models.load_model"):
        model_io.load_model(path)
