"""`deepfield runs list | compare` and `pipelines.runs()`: run folders written by hand
(complete, half-written, broken, not a run), plus the session's tiny finance run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import pipelines
from pipelines.runs import compare_runs, format_number, list_runs, lower_is_better, runs_table
from tests.conftest import REPO, errors_before_tensorflow

CREDIT = {
    "task": "credit",
    "model": {"name": "mlp", "hidden": [32], "dropout": 0.3},
    "data": {"source": "builtin:german-credit", "validation_split": 0.2},
    "train": {"epochs": 12, "learning_rate": 0.001},
}


def make_run(
    root: Path,
    name: str,
    *,
    config: dict | None = None,
    metrics: dict | None = None,
    state: str = "complete",
    domain: str = "finance",
    task: str = "credit",
    wall: float | None = 12.5,
    status_text: str | None = None,
    metrics_text: str | None = None,
) -> Path:
    """A run folder as pipelines.runner leaves it (model.keras only when complete)."""
    path = root / name
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config or CREDIT, sort_keys=False))
    status = {"state": state, "domain": domain, "task": task, "started": "2026-11-30T08:57:47"}
    if wall is not None:
        status.update(finished="2026-11-30T08:58:00", wall_seconds=wall)
    (path / "status.json").write_text(status_text or json.dumps(status))
    if metrics is not None:
        full = {**metrics, "split": "test", "num_examples": 200, "task": task, "domain": domain}
        (path / "metrics.json").write_text(json.dumps(full))
    if metrics_text is not None:
        (path / "metrics.json").write_text(metrics_text)
    if state == "complete":
        (path / "model.keras").write_bytes(b"not really a model")
    return path


@pytest.fixture
def folder(tmp_path):
    """Three finished credit runs (the best by ROC AUC is `b`), and runs that are not."""
    root = tmp_path / "runs"
    for name, auc, loss, dropout in (
        ("a", 0.71, 0.55, 0.3),
        ("b", 0.83, 0.50, 0.5),
        ("c", 0.78, 0.48, 0.3),
    ):
        config = {**CREDIT, "model": {**CREDIT["model"], "dropout": dropout}}
        metrics = {
            "loss": loss,
            "roc_auc": auc,
            "pr_auc": auc - 0.2,
            "accuracy": 0.7,
            "cost": 132.0,
        }
        path = make_run(root, f"finance/credit/{name}", config=config, metrics=metrics)
        # A run's own folders are not searched, even where they look like runs.
        make_run(path / "checkpoints", "inner", metrics={"roc_auc": 0.99})
    make_run(root, "finance/credit/running", state="running", wall=None)
    make_run(root, "vision/broken", status_text='{"state": "comp', domain="vision")
    make_run(
        root, "vision/half", metrics_text='{"loss": 0.1, "accu', task="classify", domain="vision"
    )
    make_run(root, "vision/killed", state="failed", task="classify", domain="vision", wall=3.0)
    (root / "notes" / "sub").mkdir(parents=True)
    (root / "notes" / "sub" / "config.yaml").write_text("a: 1\n")  # no status.json
    return root


def names(rows):
    return [row["name"] for row in rows]


def test_list_shows_every_run_with_its_status(folder):
    rows = {row["name"]: row for row in list_runs(folder)}
    assert sorted(rows) == [
        "finance/credit/a",
        "finance/credit/b",
        "finance/credit/c",
        "finance/credit/running",
        "vision/broken",
        "vision/half",
        "vision/killed",
    ]
    b = rows["finance/credit/b"]
    assert (b["domain"], b["task"], b["data"], b["model"], b["status"]) == (
        "finance",
        "credit",
        "builtin:german-credit",
        "mlp",
        "complete",
    )
    assert b["headline"][0] == "roc_auc"  # finance's credit tour leg
    assert b["wall_seconds"] == 12.5 and b["date"] == "2026-11-30T08:57:47"
    assert b["metrics"]["roc_auc"] == 0.83 and "domain" not in b["metrics"]
    assert rows["finance/credit/running"]["status"] == "running"
    assert rows["finance/credit/running"]["metrics"] == {}
    assert rows["vision/broken"]["status"] == "broken"
    assert "status.json" in rows["vision/broken"]["problem"]
    assert rows["vision/half"]["status"] == "complete"
    assert "metrics.json is not valid JSON" in rows["vision/half"]["problem"]
    assert rows["vision/killed"]["status"] == "failed"
    # Filters
    assert names(list_runs(folder, domain="vision", task="classify")) == [
        "vision/half",
        "vision/killed",
    ]


def test_sort_puts_the_best_of_three_first(folder, cli, monkeypatch):
    assert names(list_runs(folder, sort="roc_auc"))[:3] == [f"finance/credit/{n}" for n in "bca"]
    # Lower is better for losses and costs; runs without the metric come last.
    by_loss = list_runs(folder, sort="loss")
    assert names(by_loss)[:3] == [f"finance/credit/{n}" for n in "cba"]
    assert all(not row["metrics"].get("loss") for row in by_loss[3:])
    assert lower_is_better("val_loss") and lower_is_better("fairness_tpr_diff")
    assert not lower_is_better("recall_at_fpr_1pct") and not lower_is_better("precision")

    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = cli("runs", "list", "--sort", "roc_auc", str(folder))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:7] == ["run", "domain", "task", "data", "model", "status", "roc_auc"]
    assert lines[1].split()[0] == "finance/credit/b" and "0.83" in lines[1].split()
    assert "best first by roc_auc" in out and "7 runs under" in out
    assert "vision/broken: status.json is not valid JSON" in out  # problems, after the table


def test_table_numbers_and_width(folder):
    assert [format_number(v) for v in (57.0, 200, 0.123456, 519.527, 123456.7, None)] == [
        "57",
        "200",
        "0.1235",
        "519.5",
        "123457",
        "-",
    ]
    rows = list_runs(folder)
    rows[0]["data"] = "csv:/a/very/long/path/to/some/transactions_2026_full_export.csv"
    table = runs_table(rows, width=110)
    assert all(len(line) <= 110 for line in table.splitlines()), table
    assert "csv:/a...ort.csv" in table and "roc_auc 0.71" in table  # a path keeps both ends
    narrow = runs_table(rows, width=80)  # date and data give way to the first metric
    assert all(len(line) <= 80 for line in narrow.splitlines()) and "roc_auc 0.71" in narrow
    assert "cost 132" not in table  # headline metrics only; counts print as integers:
    assert "roc_auc 0.71  pr_auc 0.51  accuracy 0.7" in runs_table(rows, width=400)


def test_json_lists_every_metric(folder, cli):
    code, out, err = cli("runs", "list", "--json", "--domain", "finance", str(folder))
    assert code == 0, err
    rows = json.loads(out)
    assert [row["name"] for row in rows][:3] == [
        "finance/credit/a",
        "finance/credit/b",
        "finance/credit/c",
    ]
    assert rows[1]["metrics"] == {
        "loss": 0.5,
        "roc_auc": 0.83,
        "pr_auc": pytest.approx(0.63),
        "accuracy": 0.7,
        "cost": 132.0,
        "num_examples": 200,
    }
    assert rows[1]["run"] == str(folder / "finance/credit/b") and rows[1]["split"] == "test"


def test_python_api_returns_a_dataframe(folder):
    frame = pipelines.runs(folder, sort="roc_auc")
    assert frame.iloc[0]["name"] == "finance/credit/b" and frame.iloc[0]["roc_auc"] == 0.83
    assert {"run", "domain", "task", "data", "model", "status", "wall_seconds", "date"} <= set(
        frame
    )
    assert frame.columns[-1] == "problem" and len(frame) == 7
    assert pipelines.runs(folder, domain="rl").empty


def test_compare_lists_the_keys_that_differ(folder, cli):
    result = compare_runs([folder / "finance/credit/a", folder / "finance/credit/b"])
    assert result["config"]["differ"] == {"model.dropout": [0.3, 0.5]}
    assert result["config"]["only_in_some"] == {} and result["notes"] == []
    assert result["metrics"]["roc_auc"] == [0.71, 0.83]
    assert list(result["metrics"])[0] == "roc_auc"  # the headline first
    assert [r["label"] for r in result["runs"]] == ["a", "b"]

    # Names as `runs list` prints them, found under --dir.
    code, out, err = cli(
        "runs", "compare", "--dir", str(folder), "finance/credit/a", "finance/credit/b"
    )
    assert code == 0, err
    assert "config keys that differ:" in out
    dropout = next(line for line in out.splitlines() if line.startswith("model.dropout"))
    assert dropout.split() == ["model.dropout", "0.3", "0.5"]
    assert "train.epochs" not in out  # equal keys are left out
    assert next(line for line in out.splitlines() if line.startswith("roc_auc")).split() == [
        "roc_auc",
        "0.71",
        "0.83",
    ]
    code, out, _ = cli(
        "runs",
        "compare",
        "--json",
        str(folder / "finance/credit/a"),
        str(folder / "finance/credit/c"),
    )
    assert code == 0 and json.loads(out)["config"]["differ"] == {}


def test_compare_across_domains_says_what_it_can(folder, tmp_path, cli):
    rl = make_run(
        tmp_path,
        "rl/ppo",
        config={
            "agent": {"name": "ppo", "total_steps": 2048},
            "data": {"source": "gym:CartPole-v1"},
        },
        metrics={"mean_return": 500.0, "std_return": 0.0},
        domain="rl",
        task="control",
    )
    result = compare_runs([folder / "finance/credit/a", rl, folder / "vision/broken"])
    assert result["config"]["compared"] == 1 and list(result["config"]["differ"]) == ["data.source"]
    two = compare_runs([folder / "finance/credit/a", rl])
    assert two["config"]["differ"] == {"data.source": ["builtin:german-credit", "gym:CartPole-v1"]}
    assert two["config"]["only_in_some"]["agent.name"] == {"ppo": "ppo"}
    assert two["config"]["only_in_some"]["model.dropout"] == {"a": 0.3}
    assert two["metrics"]["mean_return"] == [None, 500.0]
    assert "different domains (finance, rl)" in two["notes"][0]

    code, out, err = cli(
        "runs", "compare", str(folder / "finance/credit/a"), str(rl), str(folder / "vision/broken")
    )
    assert code == 0, err
    assert "note: runs of different domains" in out and "status.json is not valid JSON" in out
    assert "config keys only some runs have:" in out and "ppo: agent.name, agent.total_steps" in out
    assert next(line for line in out.splitlines() if line.startswith("mean_return")).split() == [
        "mean_return",
        "-",
        "500",
        "-",
    ]


def test_bad_input_is_one_error_line(folder, tmp_path, cli):
    for args, message in (
        (("runs", "list", str(tmp_path / "nowhere")), "is not a folder"),
        (("runs", "list", "--sort", "dice", str(folder)), "no run here has metric 'dice'"),
        (("runs", "compare", str(folder / "finance/credit/a")), "at least two runs"),
        (
            ("runs", "compare", str(folder / "finance/credit/a"), str(folder / "notes")),
            "not a run folder",
        ),
    ):
        code, out, err = cli(*args)
        assert code == 2 and err.startswith("error:") and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, out, _ = cli("runs", "list", str(tmp_path / "empty"))
    assert code == 0 and out.strip() == f"no runs under {tmp_path / 'empty'}"
    for command in (("runs",), ("runs", "list"), ("runs", "compare")):
        code, out, _ = cli(*command, "--help")
        assert code == 0 and "Example:" in out


def test_listing_and_comparing_never_import_tensorflow(folder):
    a, b = str(folder / "finance/credit/a"), str(folder / "vision/half")
    calls = [
        f"pipelines.runs({str(folder)!r}, sort='roc_auc')",
        f"__import__('pipelines.cli').cli.main(['runs', 'list', {str(folder)!r}])",
        f"__import__('pipelines.cli').cli.main(['runs', 'compare', {a!r}, {b!r}])",
    ]
    assert errors_before_tensorflow(calls, cwd=REPO) == [None, None, None]


def test_a_real_run_is_listed(domain_run):
    run = domain_run("finance")  # the session's tiny credit run, shared with the harness
    (row,) = list_runs(run.path.parent)
    assert (row["domain"], row["task"], row["status"]) == ("finance", "credit", "complete")
    assert row["headline"][0] == "roc_auc" and row["problem"] is None
    assert row["metrics"]["roc_auc"] == run.metrics["roc_auc"] and row["wall_seconds"] > 0
    assert row["data"] == run.config["data"]["source"] and row["model"] == "mlp"
