"""What the domain contract refuses before TensorFlow, and the tour's exit code 3."""

from types import SimpleNamespace

import pytest

from shared.errors import UserError
from tests.conftest import errors_before_tensorflow


def test_finance_refuses_multi_worker_before_training(tmp_path):
    from pipelines import finance

    with pytest.raises(UserError, match="finance does not train with --strategy multi-worker"):
        finance.train(config="credit", strategy="multi-worker", run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_bad_input_errors_import_no_tensorflow(tmp_path):
    """Config, spec, strategy and table errors come before TensorFlow starts."""
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    errors = errors_before_tensorflow(
        [
            "pipelines.vision.train(data='csv:x.csv')",
            f"pipelines.vision.train(data='folder:{tmp_path}/none')",
            "pipelines.finance.train(overrides=['train.epoch=3'])",
            f"pipelines.finance.train(task='credit', data='csv:{table}', "
            "overrides=['data.target=zz'])",
        ],
        tmp_path,
    )
    assert "vision does not read csv: data" in errors[0]
    assert "does not exist" in errors[1] and "unknown config key 'train.epoch'" in errors[2]
    assert "target column 'zz' is not in the data (columns: a, b)" in errors[3]


def test_run_lists_its_verbs_and_refuses_another_domains(tmp_path):
    from pipelines.api import api_for

    rl, vision = api_for("rl"), api_for("vision")
    assert "play" in rl.domain.verbs() and "explain" not in rl.domain.verbs()
    with pytest.raises(UserError, match="vision has no verb 'play'; its verbs: train, evaluate"):
        _ = vision.play
    with pytest.raises(UserError, match="rl has no verb 'explain'"):
        rl.explain(tmp_path)
    with pytest.raises(AttributeError):
        _ = vision.no_such_thing  # not a verb anywhere: a plain AttributeError


def test_full_tour_that_misses_a_target_exits_3(tmp_path, monkeypatch, cli):
    from pipelines import tour
    from shared.domain import TourLeg

    leg = TourLeg("fake", "a leg that misses", "accuracy", 0.99, config="default")
    run = SimpleNamespace(metrics={"accuracy": 0.5}, plots=[])
    monkeypatch.setattr(tour, "legs", lambda: [("vision", leg)])
    monkeypatch.setattr(tour, "run_leg", lambda *args: run)
    code, out, err = cli("tour", "--out", str(tmp_path / "tour"))
    assert code == 3 and "tour leg fake missed its target" in err
    assert "MISSED" in out
    code, out, err = cli("tour", "--quick", "--out", str(tmp_path / "quick"))
    assert code == 0, err
