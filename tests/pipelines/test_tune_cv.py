"""`tune --cv K`: each trial is K fold runs over the rows outside the test split, scored
by their mean, and the best trial is refit on the usual split (finance credit, 2 epochs
per run, about 3 s each); the refusals; (large) folds trained by 2 worker processes."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import errors_before_tensorflow
from tests.pipelines.test_tune import BASE, SPACE


def _splits(run: Path) -> dict:
    return json.loads((run / "data_splits.json").read_text())


def test_cv_search_scores_folds_and_refits_the_best(tmp_path, cli):
    (tmp_path / "space.yaml").write_text(SPACE)
    folder = tmp_path / "search"
    args = [*BASE, "--space", str(tmp_path / "space.yaml"), "--run-dir", str(folder)]
    code, out, err = cli(*args, "--trials", "1", "--cv", "2")
    assert code == 0, err
    search = json.loads((folder / "search.json").read_text())
    assert search["cv"] == 2
    for trial in search["trials"]:
        assert trial["status"] == "complete" and len(trial["folds"]) == 2
        assert trial["objective"] == pytest.approx(statistics.fmean(trial["folds"]))
        walls = [
            json.loads((folder / "trials" / trial["id"] / f"fold-{k}" / "status.json").read_text())
            for k in range(2)
        ]
        assert trial["wall_seconds"] == pytest.approx(sum(w["wall_seconds"] for w in walls), 0.01)
    best = search["best"]
    folds = [folder / "trials" / best["id"] / f"fold-{k}" for k in range(2)]
    refit = folder / "refit" / best["id"]
    assert search["refit"] == {"trial": best["id"], "run": str(refit)}
    assert json.loads((refit / "status.json").read_text())["state"] == "complete"
    # The folds validate on different rows, together as many as train and validation
    # hold in the refit; the test split is the refit's in every fold.
    fold_splits = [_splits(f) for f in folds]
    assert [s["cv"] for s in fold_splits] == [{"fold": 0, "folds": 2}, {"fold": 1, "folds": 2}]
    assert "cv" not in _splits(refit)
    sizes = [{k: v["size"] for k, v in s["splits"].items()} for s in fold_splits]
    usual = {k: v["size"] for k, v in _splits(refit)["splits"].items()}
    assert sizes[0]["validation"] + sizes[1]["validation"] == usual["train"] + usual["validation"]
    assert all(s["test"] == usual["test"] for s in sizes)
    assert all(s["splits"]["test"] == _splits(refit)["splits"]["test"] for s in fold_splits)
    # The refit trains the best values; the result's best run is the refit.
    import yaml

    config = yaml.safe_load((refit / "config.yaml").read_text())
    assert config["train"]["learning_rate"] == pytest.approx(best["values"]["train.learning_rate"])
    assert "refit on the usual split" in out and "2-fold cross-validation" in out
    # Rerunning resumes: nothing retrains; another --cv in the folder is refused.
    before = [(f / "status.json").read_text() for f in [*folds, refit]]
    code, _, err = cli(*args, "--trials", "1", "--cv", "2")
    assert code == 0, err
    assert [(f / "status.json").read_text() for f in [*folds, refit]] == before
    code, _, err = cli(*args, "--trials", "1", "--cv", "3")
    assert code == 2 and "different cv" in err


def test_cv_refusals_come_before_tensorflow(tmp_path, cli):
    calls = [
        "pipelines.finance.tune(config='credit', trials=1, cv=2, objective='roc_auc', run_dir='s')",
        "pipelines.finance.tune(config='credit', trials=1, cv=1, run_dir='s')",
    ]
    errors = errors_before_tensorflow(calls, tmp_path)
    assert "the objective must be a val_* metric" in errors[0] and "roc_auc" in errors[0]
    assert "--cv must be at least 2 folds (got 1)" in errors[1]
    assert not (tmp_path / "s").exists()
    code, _, err = cli(*BASE, "--trials", "1", "--cv", "1")
    assert code == 2 and "--cv" in err and "Traceback" not in err


def test_cv_on_data_with_its_own_validation_split_is_one_error(tmp_path, cli):
    """A folder with train/ val/ test/ brings its validation split: nothing to fold."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 4), ("test", 4)):
        for label in ("a", "b"):
            (tmp_path / "images" / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (8, 8), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "images" / split / label / f"{i}.png")
    args = ["vision", "tune", "--config", "digits", "--data", f"folder:{tmp_path / 'images'}"]
    args += ["--set", "train.epochs=1", "--trials", "1", "--cv", "2"]
    for _ in range(2):  # the run it trained is removed: a rerun fails the same way
        code, _, err = cli(*args, "--run-dir", str(tmp_path / "search"))
        assert code == 2
        assert "came with its own validation split" in err and "search without --cv" in err
        assert not (tmp_path / "search" / "trials" / "0" / "fold-0").exists()


def test_workers_are_started_with_the_searchs_folds(tmp_path):
    """A --workers search's worker processes train folds too: their command carries --cv."""
    from pipelines import tune_workers
    from tests.pipelines.test_tune_workers import credit_search

    def command(cv):
        search = credit_search(tmp_path / f"search-{cv}", workers=2, cv=cv)
        return tune_workers.worker_command(search, tmp_path, "tuner0", "localhost:1")

    with_cv = command(3)
    assert with_cv[with_cv.index("--cv") + 1] == "3"
    assert "--cv" not in command(None)


@pytest.mark.large
def test_two_workers_train_every_fold_of_their_trials(tmp_path, cli):
    """--cv 2 --workers 2: each worker trains both folds of the trials it is given, the
    chief scores their mean and refits the best; no worker is left behind."""
    from tests.pipelines.test_tune_workers import CREDIT, _worker_pids

    search = (tmp_path / "search").resolve()
    args = [*CREDIT, "--trials", "4", "--workers", "2", "--cv", "2", "--run-dir", str(search)]
    code, out, err = cli(*args)
    assert code == 0, err[-3000:]
    data = json.loads((search / "search.json").read_text())
    assert data["cv"] == 2 and [t["status"] for t in data["trials"]] == ["complete"] * 4
    assert {t["worker"] for t in data["trials"]} == {"tuner0", "tuner1"}
    for trial in data["trials"]:
        folds = [Path(trial["run"]) / f"fold-{k}" for k in range(2)]
        assert [_splits(f)["cv"] for f in folds] == [{"fold": k, "folds": 2} for k in range(2)]
        assert trial["objective"] == pytest.approx(statistics.fmean(trial["folds"]))
    best = data["best"]["id"]
    refit = search / "refit" / best
    assert data["refit"] == {"trial": best, "run": str(refit)}
    assert "cv" not in _splits(refit) and "refit on the usual split" in out
    assert not _worker_pids(search)
