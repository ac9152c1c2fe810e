"""`deepfield <domain> tune`: space checks before TensorFlow, and real tiny searches on
finance credit (2 epochs per trial, about 3 s each): evolution with a child trial,
resume with more trials, a failing trial recorded while the search goes on."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import errors_before_tensorflow

BASE = ["finance", "tune", "--config", "credit", "--set", "train.epochs=2", "--seed", "5"]
SPACE = """\
train.learning_rate: {type: float, min: 1e-3, max: 3e-2, sampling: log}
model.hidden: {type: choice, values: [[8], [16]]}
"""
BAD_SPACES = {
    "unknown": "train.learing_rate: {type: float, min: 1e-4, max: 1e-2}\n",
    "range": "train.learning_rate: {type: float, min: 1e-2, max: 1e-4}\n",
    "schema": "data.validation_split: {type: float, min: 0.1, max: 1.5}\n",
    "type": "train.batch_size: {type: integer, min: 16, max: 64}\n",
}


def test_bad_spaces_are_one_error_before_tensorflow(tmp_path):
    for name, text in BAD_SPACES.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    calls = [
        f"pipelines.finance.tune(config='credit', space='{name}.yaml', trials=2, run_dir='s')"
        for name in BAD_SPACES
    ] + ["pipelines.finance.tune(config='credit', trials=2, max_time='soon', run_dir='s')"]
    errors = errors_before_tensorflow(calls, tmp_path)
    assert errors[0].startswith("unknown config key 'train.learing_rate' in unknown.yaml")
    assert "close valid keys: train.learning_rate" in errors[0]
    assert "impossible range, min 0.01 is not below max 0.0001" in errors[1]
    assert "data.validation_split" in errors[2] and "less than 1" in errors[2]
    assert "unknown type 'integer'" in errors[3]
    assert "--max-time 'soon'" in errors[4]
    assert not (tmp_path / "s").exists()  # nothing written
    # The CLI: exit 2 and one error line, no traceback.
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *BASE, "--space", "unknown.yaml", "--trials", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "train.learing_rate" in errors[0]
    assert "Traceback" not in done.stderr


def test_a_list_option_offered_as_strings_is_refused_before_any_trial(tmp_path):
    """small_cnn's `filters` takes a list: "[16, 32]" (a string) would fail every trial."""
    import pipelines
    from shared.errors import UserError

    (tmp_path / "space.yaml").write_text('model.filters: {type: choice, values: ["[8]", "[16]"]}\n')
    with pytest.raises(UserError, match=r"takes a list.*values: \[\[16, 32\]"):
        pipelines.vision.tune(
            config="digits", space=tmp_path / "space.yaml", trials=2, run_dir=tmp_path / "s"
        )
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def evolution_search(tmp_path_factory):
    """A 3-trial evolution search (population 2: trial 2 is a tournament child)."""
    from pipelines.cli import main

    root = tmp_path_factory.mktemp("tune")
    (root / "space.yaml").write_text(SPACE)
    args = [*BASE, "--space", str(root / "space.yaml"), "--algorithm", "evolution"]
    args += ["--population", "2", "--sample-size", "2", "--run-dir", str(root / "search")]
    assert main([*args, "--trials", "3"]) == 0
    return root, args


def test_evolution_search_writes_trials_as_runs(evolution_search, cli):
    root, _ = evolution_search
    search = json.loads((root / "search" / "search.json").read_text())
    # Selected on validation (history.csv), never on the test split metrics.json reports.
    assert search["algorithm"] == "evolution" and search["objective"] == "val_loss"
    assert search["direction"] == "min"
    assert [t["id"] for t in search["trials"]] == ["0", "1", "2"]
    for trial in search["trials"]:
        assert trial["status"] == "complete"
        assert set(trial["values"]) == {"train.learning_rate", "model.hidden"}
        assert 1e-3 <= trial["values"]["train.learning_rate"] <= 3e-2
        with open(Path(trial["run"]) / "history.csv", newline="") as handle:
            last = list(csv.DictReader(handle))[-1]
        assert trial["objective"] == pytest.approx(float(last["val_loss"]))
        assert trial["wall_seconds"] > 0
    # The child differs from some earlier trial in one value.
    child = search["trials"][2]["values"]
    assert min(sum(child[k] != t["values"][k] for k in child) for t in search["trials"][:2]) == 1
    best = min(search["trials"], key=lambda t: t["objective"])
    assert search["best"]["id"] == best["id"]
    assert search["population"] == ["1", "2"]  # aging: trial 0 left
    # The second objective: every trial's size, and the front no trial beats on both.
    sizes = {t["id"]: t["parameters"] for t in search["trials"]}
    assert all(isinstance(n, int) and n > 0 for n in sizes.values())
    front = search["pareto"]
    assert best["id"] in front and (root / "search" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    for t in search["trials"]:
        if t["id"] not in front:  # dominated: some front member is as good on both
            assert any(
                search["trials"][int(f)]["objective"] <= t["objective"]
                and sizes[f] <= sizes[t["id"]]
                for f in front
            )
    code, out, _ = cli("runs", "list", str(root / "search" / "trials"), "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_resume_with_more_trials_keeps_finished_ones(evolution_search):
    import pipelines

    root, args = evolution_search
    folder = root / "search"
    before = {t: (folder / "trials" / t / "status.json").read_text() for t in ("0", "1", "2")}
    result = pipelines.finance.tune(
        config="credit",
        overrides=["train.epochs=2"],
        seed=5,
        space=root / "space.yaml",
        algorithm="evolution",
        population=2,
        sample_size=2,
        run_dir=folder,
        trials=4,
    )
    after = {t: (folder / "trials" / t / "status.json").read_text() for t in ("0", "1", "2")}
    assert after == before  # not retrained
    assert list(result.trials["trial"]) == ["0", "1", "2", "3"]
    assert set(result.trials["status"]) == {"complete"}
    assert result.best.history[-1]["val_loss"] == pytest.approx(result.trials["val_loss"].min())
    model = result.best.load_model()
    assert model.count_params() > 0
    assert "best: trial" in result.table()


def test_failed_trial_is_recorded_and_the_search_goes_on(tmp_path, cli):
    (tmp_path / "space.yaml").write_text(
        "data.target: {type: choice, values: [default, no_such_column]}\n"
    )
    code, out, err = cli(
        *BASE,
        "--space",
        str(tmp_path / "space.yaml"),
        "--trials",
        "2",
        "--run-dir",
        str(tmp_path / "search"),
    )
    assert code == 0, err
    search = json.loads((tmp_path / "search" / "search.json").read_text())
    status = {t["values"]["data.target"]: t for t in search["trials"]}
    assert status["default"]["status"] == "complete"
    assert status["no_such_column"]["status"] == "failed"
    assert "no_such_column" in status["no_such_column"]["error"]
    assert search["best"]["values"]["data.target"] == "default"
    assert "failed:" in out and "best: trial" in out
    # A folder that holds this search refuses another domain's search.
    code, _, err = cli("vision", "tune", "--trials", "1", "--run-dir", str(tmp_path / "search"))
    assert code == 2 and "holds a finance search" in err


def test_pareto_front_keeps_the_trials_nothing_beats_on_both():
    from pipelines.tune_results import pareto_front

    def row(i, objective, parameters, status="complete"):
        return {"id": i, "objective": objective, "parameters": parameters, "status": status}

    rows = [
        row("a", 0.90, 1000),
        row("b", 0.85, 200),  # smaller, worse: on the front
        row("c", 0.80, 500),  # beaten by b on both
        row("d", 0.90, 1200),  # as good as a, larger: beaten
        row("e", 0.99, 5000),
        row("f", None, 10, status="failed"),
    ]
    assert pareto_front(rows, "max") == ["e", "a", "b"]
    losses = [row("a", 0.2, 100), row("b", 0.1, 100), row("c", 0.3, 50)]
    assert pareto_front(losses, "min") == ["b", "c"]


def test_the_latency_front_uses_latency_not_parameters():
    from pipelines.tune_results import pareto_front, search_table

    def row(i, objective, parameters, latency):
        return {
            "id": i,
            "objective": objective,
            "parameters": parameters,
            "latency_ms": latency,
            "status": "complete",
            "values": {},
            "run": f"s/trials/{i}",
            "worker": f"tuner{int(i) % 2}",
        }

    rows = [row("0", 0.5, 1000, 0.9), row("1", 0.4, 5000, 0.3), row("2", 0.6, 100, 2.0)]
    assert pareto_front(rows, "min", "latency_ms") == ["1"]  # fastest and best
    assert pareto_front(rows, "min", "parameters") == ["1", "0", "2"]
    data = {
        "domain": "finance",
        "task": "credit",
        "algorithm": "random",
        "objective": "val_loss",
        "direction": "min",
        "size_objective": "latency",
        "space": {},
        "trials": rows,
        "best": rows[1],
        "pareto": ["1"],
    }
    table = search_table(data)
    assert "latency (ms)" in table.splitlines()[1] and "worker" in table.splitlines()[1]
    assert "Pareto front (val_loss vs batch-1 latency (ms)): 1 (0.3 ms)" in table


def test_a_trial_saved_as_a_preset_is_a_named_config(evolution_search, cli, tmp_path, monkeypatch):
    import pipelines
    from pipelines.tune_results import result_of
    from shared.config import read_yaml, to_plain

    monkeypatch.setenv("DEEPFIELD_CONFIG_DIR", str(tmp_path / "presets"))
    root, _ = evolution_search
    folder = root / "search"
    code, out, err = cli("finance", "tune", "--run-dir", str(folder), "--save-preset", "tuned")
    assert code == 0, err
    best = json.loads((folder / "search.json").read_text())["best"]
    preset = tmp_path / "presets" / "finance" / "tuned.yaml"
    assert str(preset) in out and "deepfield finance train --config tuned" in out
    trial = read_yaml(Path(best["run"]) / "config.yaml")
    assert to_plain(pipelines.finance.resolve_config("tuned")) == trial
    assert "tuned" in pipelines.finance.named_configs()
    # Train with it: the run's config is the trial's.
    code, _, err = cli("finance", "train", "--config", "tuned", "--run-dir", str(tmp_path / "run"))
    assert code == 0, err
    assert read_yaml(tmp_path / "run" / "config.yaml") == trial
    # Refusals: one error line, exit 2, nothing written.
    refusals = {
        ("--save-preset", "tuned"): "pass --force to replace it",
        ("--save-preset", "credit"): "'credit' is a built-in finance config",
        ("--save-preset", "x", "--trial", "9"): "--trial '9': the search has no such trial",
        ("--save-preset", "../x"): "preset name '../x'",
        ("--trial", "1"): "--trial and --force go with --save-preset NAME",
    }
    for args, message in refusals.items():
        code, _, err = cli("finance", "tune", "--run-dir", str(folder), *args)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, err)
    code, _, err = cli("vision", "tune", "--run-dir", str(folder), "--save-preset", "v")
    assert code == 2 and "holds a finance search, not a vision one" in err
    assert sorted(p.name for p in preset.parent.iterdir()) == ["tuned.yaml"]
    # --force replaces it; the Python API saves another trial.
    code, _, _ = cli(
        "finance",
        "tune",
        "--run-dir",
        str(folder),
        "--save-preset",
        "tuned",
        "--trial",
        "0",
        "--force",
    )
    assert code == 0 and read_yaml(preset) == read_yaml(folder / "trials" / "0" / "config.yaml")
    path = result_of(folder).save_preset("second", trial="1")
    assert read_yaml(path) == read_yaml(folder / "trials" / "1" / "config.yaml")
