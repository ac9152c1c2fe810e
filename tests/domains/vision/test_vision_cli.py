"""The vision CLI: predict, explain, evaluate, and one `error:` line for bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from shared.data import load_image_data


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory):
    """Three test digits written as 8x8 PNG files, with their true labels."""
    folder = tmp_path_factory.mktemp("pngs")
    images, labels = load_image_data("builtin:digits").splits["test"].arrays(limit=3)
    paths = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = folder / f"digit{i}_{label}.png"
        Image.fromarray(image[..., 0]).save(path)
        paths.append(path)
    return paths, labels


def test_predict_prints_one_json_object_per_input(digits_run, digit_pngs, cli):
    paths, _ = digit_pngs
    code, out, err = cli("vision", "predict", "--run", str(digits_run.path), *map(str, paths))
    assert code == 0, err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [line["input"] for line in lines] == [str(p) for p in paths]
    for line in lines:
        assert line["label"] in [str(i) for i in range(10)]
        assert 0.0 <= line["probability"] <= 1.0
        assert line["top_k"][0]["label"] == line["label"]


def test_predict_from_file_matches_in_memory_model(digits_run, digit_pngs):
    paths, _ = digit_pngs
    images, _ = load_image_data("builtin:digits").splits["test"].arrays(limit=3)
    expected = digits_run.load_model().predict(images.astype("float32"), verbose=0)
    results = digits_run.predict([str(p) for p in paths])
    for result, probs in zip(results, expected, strict=True):
        assert result["class_id"] == int(np.argmax(probs))
        assert result["probability"] == pytest.approx(float(probs.max()), abs=1e-5)


def test_explain_writes_gradcam_overlays(digits_run, digit_pngs, tmp_path, cli):
    paths, _ = digit_pngs
    out = tmp_path / "cam.png"
    code, stdout, err = cli(
        "vision", "explain", "--run", str(digits_run.path), "--out", str(out), *map(str, paths)
    )
    assert code == 0, err
    assert stdout.strip() == str(out)
    assert Image.open(out).size[0] > 100


def test_gradcam_heatmaps_are_normalised_and_image_sized(digits_run):
    from shared.explain import gradcam_heatmaps

    images, _ = load_image_data("builtin:digits").splits["test"].arrays(limit=4)
    heatmaps, class_ids = gradcam_heatmaps(digits_run.load_model(), images.astype("float32"))
    assert heatmaps.shape == (4, 8, 8)
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0 + 1e-6
    assert class_ids.shape == (4,)


def test_evaluate_out_leaves_metrics_json_alone(digits_run, tmp_path, cli):
    before = (digits_run.path / "metrics.json").read_text()
    out = tmp_path / "m.json"
    code, stdout, err = cli(
        "vision",
        "evaluate",
        "--run",
        str(digits_run.path),
        "--split",
        "validation",
        "--out",
        str(out),
    )
    assert code == 0, err
    metrics = json.loads(out.read_text())
    assert metrics["split"] == "validation" and metrics["num_examples"] == 180
    assert (digits_run.path / "metrics.json").read_text() == before


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# A --data kind vision does not read and an unknown --set key: the shared harness
# (tests/harness/test_domain_contract.py) checks those for every domain.
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--data", "folder:/no/such/folder"], "does not exist"),
        (["--set", "train.epochs=many"], "train.epochs"),
        (["--set", "model.depthh=3"], "unknown option"),
        (["--set", "model.name=resnett"], "unknown model 'resnett'"),
        (["--strategy", "tpu"], "no TPU"),
        (["--config", "nope"], "unknown vision config 'nope'"),
    ],
)
def test_bad_train_input_gives_one_error_line_and_exit_2(args, expected, cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = cli(
        "vision",
        "train",
        "--config",
        "digits",
        "--run-dir",
        str(run_dir),
        "--set",
        "train.epochs=1",
        *args,
    )
    assert code == 2
    assert expected in _one_error_line(err)
    assert not run_dir.exists(), "a failed start must not leave a half-written run"


def test_folder_with_one_class_is_refused(tmp_path, cli):
    (tmp_path / "imgs" / "only").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8), i * 50, np.uint8)).save(
            tmp_path / "imgs" / "only" / f"{i}.png"
        )
    code, _, err = cli(
        "vision",
        "train",
        "--data",
        f"folder:{tmp_path / 'imgs'}",
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert code == 2
    assert "class" in _one_error_line(err)


def test_run_that_is_not_a_run_directory(tmp_path, cli):
    code, _, err = cli("vision", "evaluate", "--run", str(tmp_path))
    assert code == 2
    assert "not a run directory" in _one_error_line(err)
    code, _, err = cli("vision", "predict", "--run", str(tmp_path / "missing"), "x.png")
    assert code == 2
    assert "does not exist" in _one_error_line(err)


def test_predict_on_corrupt_or_missing_image(digits_run, tmp_path, cli):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, _, err = cli("vision", "predict", "--run", str(digits_run.path), str(bad))
    assert code == 2
    assert "cannot decode image" in _one_error_line(err)
    code, _, err = cli("vision", "predict", "--run", str(digits_run.path), str(tmp_path / "no.png"))
    assert code == 2 and "does not exist" in _one_error_line(err)


def test_unknown_cli_option_is_a_usage_error(cli):
    code, _, err = cli("vision", "train", "--bogus")
    assert code == 2
    assert "--bogus" in _one_error_line(err)


def test_train_on_a_folder_with_a_corrupt_file(tmp_path, cli):
    """A folder source trains end to end; the corrupt file is counted and skipped."""
    images, labels = load_image_data("builtin:digits").splits["train"].arrays(limit=300)
    root = tmp_path / "digits"
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (root / f"class_{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(root / f"class_{label}" / f"{i}.png")
    (root / "class_0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    run_dir = tmp_path / "run"
    code, out, err = cli(
        "vision",
        "train",
        "--data",
        f"folder:{root}",
        "--run-dir",
        str(run_dir),
        "--set",
        "train.epochs=1",
        "--set",
        "model.filters=[8]",
    )
    assert code == 0, err
    splits = json.loads((run_dir / "data_splits.json").read_text())
    assert splits["corrupt_skipped"] == 1
    contract = json.loads((run_dir / "inputs.json").read_text())
    assert contract["classes"] == [f"class_{i}" for i in range(10)]
    assert sum(s["size"] for s in splits["splits"].values()) == 300
    code, _, err = cli(
        "vision",
        "train",
        "--data",
        f"folder:{root}",
        "--set",
        "data.on_corrupt=fail",
        "--run-dir",
        str(tmp_path / "strict"),
    )
    assert code == 2 and "broken.png" in _one_error_line(err)
