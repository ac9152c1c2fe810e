"""The registered driving domain: input sizing, splits, the heads the data allows, the
simulate verb, and evaluate / predict / explain on the session's tiny run (the run
directory, resume, export and bad-input contract are the harness's,
tests/harness/test_domain_contract.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from domains.driving.config import DrivingConfig, auto_image_size, segmentation_on
from domains.driving.data import load
from shared.errors import UserError
from tests.conftest import run_cli
from tests.domains.driving.test_driving_kitti_reader import _kitti

PNG = b"\x89PNG\r\n\x1a\n"


def test_auto_image_size_follows_the_frames_aspect_and_caps_the_long_side():
    assert auto_image_size([(375, 1242)] * 3, 640) == (192, 640)  # KITTI
    assert auto_image_size([(160, 320)], 640) == (160, 320)  # never upscaled
    assert auto_image_size([(1080, 1920), (720, 1280), (720, 1280)], 640) == (352, 640)
    assert auto_image_size([(640, 480)], 320) == (320, 256)  # portrait
    with pytest.raises(UserError):
        auto_image_size([], 640)


def test_segmentation_follows_the_data_and_on_without_masks_is_refused():
    config = DrivingConfig()
    assert segmentation_on(config, True) and not segmentation_on(config, False)
    off = DrivingConfig.model_validate({"model": {"segmentation": "off"}})
    assert not segmentation_on(off, True)
    on = DrivingConfig.model_validate({"model": {"segmentation": "on"}})
    with pytest.raises(UserError, match="no masks"):
        segmentation_on(on, False)


def test_image_size_must_be_multiples_of_32():
    with pytest.raises(ValueError, match="multiples of 32"):
        DrivingConfig.model_validate({"data": {"image_size": [100, 320]}})


def test_kitti_without_splits_is_cut_seeded_with_identical_images_kept_together(tmp_path):
    root = _kitti(tmp_path / "kitti", n=12)
    images = root / "training" / "image_2"
    for i in range(12):  # distinct frames, then one byte-identical copy of frame 0
        Image.fromarray(np.full((375, 1242, 3), i * 10, np.uint8)).save(images / f"{i:06d}.png")
    shutil.copy(images / "000000.png", images / "000012.png")
    shutil.copy(
        root / "training" / "label_2" / "000000.txt", root / "training" / "label_2" / "000012.txt"
    )
    config = DrivingConfig.model_validate(
        {"data": {"source": f"kitti:{root}", "validation_split": 0.2, "test_split": 0.2}}
    )
    found, info = load(config)
    sizes = {k: len(v) for k, v in found.splits.items()}
    assert sum(sizes.values()) == 13 and min(sizes.values()) >= 2
    assert info["method"] == "cut validation, test" and info["duplicates"]["rows"] == 1
    part_of = {Path(f.image_path).name: k for k, fr in found.splits.items() for f in fr}
    assert part_of["000000.png"] == part_of["000012.png"]
    again, _ = load(config)
    assert [f.image_path for f in again.splits["test"]] == [
        f.image_path for f in found.splits["test"]
    ]
    assert found.class_names == ["vehicle", "pedestrian", "cyclist"]


def test_simulate_verb_writes_the_yolo_layout_with_masks(tmp_path):
    out = tmp_path / "sim"
    done = run_cli(
        "driving",
        "simulate",
        "--frames",
        "3",
        "--out",
        str(out),
        "--seed",
        "2",
        "--width",
        "128",
        "--height",
        "64",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "vehicle"} and data["mask_names"][:2] == ["background", "road"]
    images = sorted(out.glob("images/*/*.png"))
    assert len(images) == 3 and len(list(out.glob("masks/*/*.png"))) == 3
    with Image.open(images[0]) as im:
        assert im.size == (128, 64)
    again = run_cli("driving", "simulate", "--frames", "3", "--out", str(out))
    assert again.returncode == 2 and again.stderr.strip().startswith("error:")


def test_mask_head_on_for_a_set_without_masks_is_exit_2(tmp_path):
    root = _kitti(tmp_path / "kitti", n=4)
    done = run_cli(
        "driving",
        "train",
        "--data",
        f"kitti:{root}",
        "--set",
        "model.segmentation=on",
        "--set",
        "train.epochs=1",
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error:")
    assert "no masks" in done.stderr


@pytest.fixture(scope="module")
def run(domain_run):
    return domain_run("driving")


def test_the_run_records_its_input_contract_and_scores_both_heads(run):
    contract = json.loads((run.path / "inputs.json").read_text())
    assert contract["classes"] == ["vehicle"]
    assert contract["details"]["image_size"] == [64, 128] and contract["details"]["segmentation"]
    for key in ("map", "map_50", "map_75", "ap_50_vehicle", "iou_road", "iou_lane", "miou"):
        assert 0.0 <= run.metrics[key] <= 1.0, key
    assert run.metrics["frames_per_second"] > 0
    for plot in ("detections.png", "precision_recall.png", "training_curves.png"):
        assert (run.path / "plots" / plot).read_bytes()[:8] == PNG


def test_predict_gives_boxes_in_the_inputs_own_pixels_and_mask_shares(run, tmp_path):
    image = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 400, 3), np.uint8)).save(image)
    [result] = run.predict([str(image)])
    assert (result["width"], result["height"]) == (400, 90)
    for det in result["detections"]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 <= x2 <= 400 and 0 <= y1 <= y2 <= 90 and det["label"] == "vehicle"
    assert sum(result["mask_share"].values()) == pytest.approx(1.0, abs=1e-3)


def test_evaluate_on_a_set_without_splits_scores_every_frame(run, tmp_path):
    from domains.driving.simulate import simulate

    simulate(tmp_path / "sim", 4, seed=5, progress=False, image_size=(128, 64), splits=(1, 0, 0))
    out = tmp_path / "m.json"
    metrics = run.evaluate(data=f"yolo:{tmp_path / 'sim'}", out=out)
    saved = json.loads(out.read_text())
    assert saved["num_examples"] == 4 == metrics["num_examples"]
    assert "iou_road" in saved and saved["domain"] == "driving"


def test_evaluate_on_kitti_with_other_classes_is_refused(run, tmp_path):
    root = _kitti(tmp_path / "kitti", n=2)
    with pytest.raises(UserError, match="classes"):
        run.evaluate(data=f"kitti:{root}")


def test_explain_draws_grad_cam_of_the_top_detection(run, tmp_path):
    out = run.explain(out=tmp_path / "cam.png")
    assert Path(out).read_bytes()[:8] == PNG


def test_a_set_with_the_run_classes_in_another_order_is_renumbered_by_name(tmp_path):
    from domains.driving.data import read_source, to_run_classes

    root = _kitti(tmp_path / "kitti", n=1)
    found = read_source(f"kitti:{root}", DrivingConfig())
    before = {found.class_names[c] for c in found.frames()[0].classes}
    to_run_classes(found, ["cyclist", "pedestrian", "vehicle"])
    after = {found.class_names[c] for c in found.frames()[0].classes}
    assert found.class_names == ["cyclist", "pedestrian", "vehicle"] and before == after
    with pytest.raises(UserError, match="unknown"):
        to_run_classes(found, ["vehicle"])


def test_compress_prunes_the_detector_and_refuses_distillation(run, tmp_path, cli):
    """Pruning fine-tunes the perception run through its own training; distillation is
    refused up front (four heads, not one output of class probabilities)."""
    import pipelines

    pruned = pipelines.driving.compress(run, prune=0.5, epochs=1, run_dir=tmp_path / "p")
    assert pruned.metrics["sparsity"] >= 0.5 * 0.99
    assert pruned.metrics["nonzero_parameters"] < pruned.metrics["original_nonzero_parameters"]
    headline = json.loads((pruned.path / "compression.json").read_text())["headline"]
    assert headline and f"original_{headline}" in pruned.metrics
    code, _, err = cli(
        "driving",
        "compress",
        "--run",
        str(run.path),
        "--distill-from",
        str(run.path),
        "--run-dir",
        str(tmp_path / "d"),
    )
    assert code == 2 and "--distill-from does not support driving perception runs" in err
    code, _, err = cli(
        "driving",
        "compress",
        "--run",
        str(run.path),
        "--quantize",
        "int8",
        "--run-dir",
        str(tmp_path / "d"),
    )
    assert code == 2 and "--quantize does not support driving perception runs" in err
    assert "--format tflite --quantize int8" in err
    assert not (tmp_path / "d").exists()
