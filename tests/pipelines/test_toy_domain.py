"""A domain that is not part of the product plugs in with no edit outside its package.

The toy domain (tests/pipelines/toy_domain/domains/toy) goes on PYTHONPATH; the CLI and
the Python API then offer it like vision, finance and rl: train, evaluate, predict, an
extra verb, export, and clear errors for bad input and cross-domain misuse.
"""

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

TOY = Path(__file__).parent / "toy_domain"
ENV = {"PYTHONPATH": os.pathsep.join([str(TOY), str(REPO), os.environ.get("PYTHONPATH", "")])}


def toy_cli(*args):
    return run_cli(*args, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "run"
    result = toy_cli("toy", "train", "--run-dir", str(path))
    assert result.returncode == 0, result.stderr
    return path, result


def test_cli_lists_and_trains_the_toy_domain(toy_run):
    path, result = toy_run
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["domain"] == "toy" and metrics["loss"] < 0.01
    lines = result.stdout.splitlines()  # the headline metrics table, then the run
    assert any(line.split()[:1] == ["loss"] for line in lines) and lines[-1] == f"run: {path}"
    status = json.loads((path / "status.json").read_text())
    assert status["state"] == "complete" and status["wall_seconds"] > 0
    assert status["environment"]["command"] == f"deepfield toy train --run-dir {path}"
    listing = toy_cli("--help").stdout
    assert "toy" in listing and "A toy regression domain" in listing


def test_cli_evaluate_predict_extra_verb_and_export(toy_run, tmp_path):
    path, _ = toy_run
    # Four independent processes on one finished run: started side by side (two cores).
    with ThreadPoolExecutor(4) as pool:
        evaluating, predicting, doubling, exporting = [
            pool.submit(toy_cli, *args)
            for args in (
                ("toy", "evaluate", "--run", str(path), "--out", str(tmp_path / "m.json")),
                ("toy", "predict", "--run", str(path), "--", "1.5", "-1"),
                ("toy", "double", "--run", str(path), "--x", "1"),
                ("toy", "export", "--run", str(path), "--to", str(tmp_path / "serving")),
            )
        ]
    evaluated = evaluating.result()
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "m.json").read_text())["loss"] < 0.01
    predicted = predicting.result()
    assert predicted.returncode == 0, predicted.stderr
    ys = [json.loads(line)["y"] for line in predicted.stdout.splitlines()]
    assert ys == pytest.approx([4.0, -1.0], abs=0.1)
    doubled = doubling.result()
    assert json.loads(doubled.stdout)["double"] == pytest.approx(6.0, abs=0.2)
    exported = exporting.result()
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stdout)
    assert summary["name"] == "toy_regress" and summary["verify_checked"] is True
    assert (tmp_path / "serving" / "toy_regress" / "1" / "saved_model.pb").is_file()
    assert "toy_regress" in (tmp_path / "serving" / "models.config").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["toy", "train", "--data", "gym:CartPole-v1"], "toy does not read gym: data"),
        (["toy", "train", "--data", "csv:/no/such.csv"], "/no/such.csv does not exist"),
        (["toy", "train", "--set", "train.epoch=3"], "unknown config key 'train.epoch'"),
        (["toy", "train", "--strategy", "mirrored"], "toy does not train with --strategy mirrored"),
        (["toy", "play", "--run", "x"], "toy has no verb 'play'; its verbs: train, evaluate"),
    ],
    ids=["spec-kind", "missing-file", "typo", "strategy", "verb"],
)
def test_bad_input_is_one_error_line_before_tensorflow(args, message):
    result = toy_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error:") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # nothing from TensorFlow's start-up


def test_cross_domain_misuse_is_exit_2(toy_run):
    path, _ = toy_run
    for domain in ("vision", "finance", "rl"):
        result = toy_cli(domain, "evaluate", "--run", str(path))
        assert result.returncode == 2, result.stderr
        assert f"is a toy run, not a {domain} run" in result.stderr


def test_python_api_and_run_verbs(toy_run, tmp_path):
    path, _ = toy_run
    script = textwrap.dedent(
        f"""
        import json
        from pipelines import load_run, toy
        from shared.errors import UserError

        run = load_run({str(path)!r})
        out = {{"predict": run.predict(["0"])[0]["y"], "double": run.double(x=2.0)["double"]}}
        out["verbs"] = run.verbs
        try:
            run.play()
        except UserError as err:
            out["play"] = str(err)
        again = toy.train(run_dir={str(tmp_path / "again")!r}, overrides=["train.epochs=2"])
        out["again"] = again.metrics["domain"]
        out["command"] = json.loads((again.path / "status.json").read_text())["environment"]["command"]
        print(json.dumps(out))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **ENV},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["predict"] == pytest.approx(1.0, abs=0.1)
    assert out["double"] == pytest.approx(10.0, abs=0.3)
    assert out["verbs"] == ["evaluate", "predict", "export", "compress", "double"]
    assert (
        out["play"]
        == "toy has no verb 'play'; its verbs: train, evaluate, predict, export, tune, compress, double"
    )
    assert out["again"] == "toy"
    assert out["command"] == (
        f"pipelines.toy.train(run_dir={str(tmp_path / 'again')!r}, overrides=['train.epochs=2'])"
    )
