"""`deepfield <domain> compress` end to end on the session's tiny vision run (digits):
a pruned run with at least half its kernel weights zero that evaluates and exports like
any run, int8 quantization and distillation through the Python API, and bad input as
one `error:` line (exit 2)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

import pipelines
from pipelines.compress import RECORD

FIGURES = ("size_bytes", "parameters", "nonzero_parameters", "latency_ms")


@pytest.fixture(scope="module")
def vision_run(domain_run):
    return domain_run("vision")


@pytest.fixture(scope="module")
def pruned(vision_run, tmp_path_factory):
    from pipelines.cli import main

    path = tmp_path_factory.mktemp("compress") / "pruned"
    code = main(
        ["vision", "compress", "--run", str(vision_run.path), "--prune", "0.5"]
        + [
            "--run-dir",
            str(path),
        ]
    )
    assert code == 0
    return path


def test_prune_writes_a_run_with_half_its_kernels_zero(pruned, vision_run):
    from shared.compression.pruning import sparsity_report
    from shared.model_io import load_model

    report = sparsity_report(load_model(pruned / "model.keras"))  # safe mode, zoo imported
    assert report["global"] >= 0.5
    for path, (zeros, size) in report["counts"].items():
        assert zeros >= round(0.5 * size), path  # first and last layers included
    metrics = json.loads((pruned / "metrics.json").read_text())
    for key in ("accuracy", "original_accuracy", *FIGURES, *(f"original_{k}" for k in FIGURES)):
        assert isinstance(metrics[key], int | float), key
    assert metrics["original_accuracy"] == vision_run.metrics["accuracy"]
    assert metrics["nonzero_parameters"] < 0.7 * metrics["original_nonzero_parameters"]
    assert metrics["sparsity"] == pytest.approx(report["global"])
    assert any(k.startswith("sparsity_") for k in metrics)
    record = json.loads((pruned / RECORD).read_text())
    assert record["prune"]["target"] == 0.5 and record["source_run"] == str(vision_run.path)
    config = yaml.safe_load((pruned / "config.yaml").read_text())
    assert config["train"]["epochs"] == 2 and config["train"]["warmup_epochs"] == 0
    card = (pruned / "MODEL_CARD.md").read_text()
    assert "## Compression" in card and "non-zero parameters" in card
    for name in ("history.csv", "plots/confusion_matrix.png", "status.json"):
        assert (pruned / name).is_file(), name


def test_pruned_run_evaluates_and_exports(pruned, cli, tmp_path):
    code, out, err = cli("vision", "evaluate", "--run", str(pruned), "--json")
    assert code == 0, err
    assert 0 <= json.loads(out)["accuracy"] <= 1
    code, out, err = cli("vision", "export", "--run", str(pruned), "--to", str(tmp_path / "serve"))
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["verify_checked"] and (tmp_path / "serve" / "models.config").is_file()


def test_quantize_int8_through_the_python_api(vision_run, tmp_path):
    run = pipelines.vision.compress(vision_run, quantize="int8", run_dir=tmp_path / "q")
    metrics = run.metrics
    assert metrics["quantized_layers"] >= 1 and metrics["float_weight_layers"] >= 1
    record = json.loads((run.path / RECORD).read_text())
    assert record["quantize"]["changed"] == ["predictions"]
    assert "--format tflite --quantize int8" in record["quantize"]["note"]
    model = run.load_model()
    assert model.get_layer("predictions").dtype_policy.quantization_mode == "int8"
    assert abs(metrics["accuracy"] - vision_run.metrics["accuracy"]) < 0.05


def test_distill_into_a_quarter_width_student(vision_run, tmp_path):
    run = vision_run.compress(
        distill_from=vision_run, epochs=1, alpha=0.5, run_dir=tmp_path / "student"
    )
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    assert config["model"]["filters"] == [2, 4]  # the tiny run's [8, 16] at a quarter
    assert run.metrics["parameters"] < run.metrics["original_parameters"] / 4
    record = json.loads((run.path / RECORD).read_text())
    assert record["distill"]["alpha"] == 0.5 and "teacher_accuracy" in run.metrics
    probabilities = run.load_model().predict(np.zeros((1, 8, 8, 1), "float32"), verbose=0)
    assert probabilities.shape == (1, 10)


def _fake_run(vision_run, tmp_path, *, domain=None, task=None):
    """A copy of the vision run whose status says another domain, or whose config
    another task (cheaper than training one)."""
    path = tmp_path / "fake"
    shutil.copytree(
        vision_run.path, path, ignore=shutil.ignore_patterns("checkpoints", "tensorboard")
    )
    if domain:
        status = json.loads((path / "status.json").read_text())
        (path / "status.json").write_text(json.dumps({**status, "domain": domain}))
    if task:
        config = yaml.safe_load((path / "config.yaml").read_text())
        (path / "config.yaml").write_text(yaml.safe_dump({**config, "task": task}))
    return path


def test_bad_input_is_one_error_line(vision_run, cli, tmp_path, monkeypatch):
    run = str(vision_run.path)
    new = ["--run-dir", str(tmp_path / "new")]
    cases = [
        (["--prune", "1.5"], "--prune is the fraction of weights to zero"),
        (["--quantize", "int3"], "'int3' is not one of 'int8', 'int4', 'float8'"),
        ([], "nothing to do"),
        (["--prune", "0.5", "--student", "lenet5"], "use them with --distill-from"),
    ]
    for extra, message in cases:
        code, _, err = cli("vision", "compress", "--run", run, *extra, *new)
        assert code == 2 and message in err, (extra, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), err
    finance = _fake_run(vision_run, tmp_path / "a", domain="finance")
    code, _, err = cli("vision", "compress", "--run", str(finance), "--prune", "0.5", *new)
    assert code == 2 and "is a finance run, not a vision run" in err
    generate = _fake_run(vision_run, tmp_path / "b", task="generate")
    distill = ["--distill-from", str(generate)]
    code, _, err = cli("vision", "compress", "--run", str(generate), *distill, *new)
    assert code == 2 and "--distill-from does not support vision generate runs" in err
    assert "vision classify" in err and "nlp lm" in err and "healthcare segment" not in err
    code, _, err = cli("vision", "compress", "--run", run, *distill, *new)
    assert code == 2 and "the teacher must be a vision classify run" in err
    from pipelines.domains import get

    methods = {"classify": ("prune", "quantize", "distill")}
    monkeypatch.setattr(type(get("vision")), "compress_methods", methods)
    code, _, err = cli("vision", "compress", "--run", str(generate), "--prune", "0.5", *new)
    assert code == 2 and "compress does not support vision generate runs" in err
    assert "vision classify" in err and "driving perception" in err
    assert not (tmp_path / "new").exists()


def test_nlp_classifier_pruned_and_quantized_serves_raw_text(domain_run, tmp_path):
    """A text classifier (string input, TextVectorization inside) prunes and quantizes:
    Keras's own quantize stops at the lookup layers unless only Dense/Embedding are asked."""
    nlp_run = domain_run("nlp")
    run = pipelines.nlp.compress(
        nlp_run, prune=0.5, quantize="int8", epochs=1, run_dir=tmp_path / "nlp"
    )
    record = json.loads((run.path / RECORD).read_text())
    assert record["prune"]["global"] >= 0.5 * 0.99  # int8 rounding may revive no zero
    assert "probabilities" in record["quantize"]["changed"]
    modes = {layer.name: layer.quantization_mode for layer in run.load_model()._flatten_layers()}
    assert modes["probabilities"] == "int8"
    predictions = run.predict(["WINNER! claim your prize now", "see you at lunch"])
    assert [p["label"] in ("ham", "spam") for p in predictions] == [True, True]
    assert run.metrics["size_bytes"] < run.metrics["original_size_bytes"]
