"""Driving perception export: bytes in, boxes and masks in each input image's pixels out,
equal to the in-process path; the SavedModel through the shared exporter (verified in a
fresh process that imports only TensorFlow); TFLite with numpy NMS.

One tiny random network for the module. An untrained FCOS head gives every location the
prior score (about 0.07, so every image has 100 near-tied detections); its class and
centerness output layers are scaled up so scores spread and the detection count varies.
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from domains.driving.letterbox import PAD_VALUE, boxes_from_letterbox, letterbox_image
from domains.driving.model import PerceptionConfig, detector, perception_model
from domains.driving.serving import (
    PerceptionServing,
    _pil_nearest_index,
    letterbox_graph,
    perception_serving_spec,
)
from domains.driving.serving_tflite import (
    PerceptionTFLite,
    decode_detections,
    export_tflite,
    nms,
    tflite_model,
)
from domains.driving.train_loop import _mask_to_frame
from shared.export import export_saved_model, signature_info

CONFIG = PerceptionConfig(
    image_size=(64, 128), width=8, fpn_channels=16, seg_channels=8, head_convs=1
)
CLASSES = ["vehicle"]
MASK_NAMES = ["background", "road", "lane_marking"]


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> dict[str, np.ndarray]:
    """Crops of one simulated 320x160 frame: letterboxing into 128x64 downscales
    (160x300), upscales (48x80) or only pads (64x100), each to another aspect ratio."""
    from domains.driving.simulate import simulate

    folder = tmp_path_factory.mktemp("sim")
    simulate(folder, 1, seed=3, splits=(1.0, 0.0, 0.0), warmup_steps=(0, 2), progress=False)
    with Image.open(next((folder / "images" / "train").glob("*.png"))) as im:
        frame = np.asarray(im.convert("RGB"))
    assert frame.shape == (160, 320, 3)
    return {"down": frame[:, :300], "up": frame[20:68, 10:90], "pad": frame[:64, :100]}


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    net = perception_model(CONFIG)
    for name in ("class_out", "centerness_out"):
        layer = net.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 150.0, bias])
    return net


@pytest.fixture(scope="module")
def module(model) -> PerceptionServing:
    return PerceptionServing(model, CONFIG, CLASSES)


@pytest.fixture(scope="module")
def decoded(model) -> keras.Model:
    return detector(model, CONFIG)


def serve(module: PerceptionServing, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    out = module.serve_bytes(tf.constant([png(i) for i in images]))
    return {k: v.numpy() for k, v in out.items()}


def in_process(decoded: keras.Model, image: np.ndarray, letterboxed: np.ndarray | None = None):
    """What evaluate_perception does with a frame: numpy letterbox (or `letterboxed`),
    the detector, boxes_from_letterbox and _mask_to_frame."""
    reference, box = letterbox_image(image, CONFIG.image_size)
    pixels = reference if letterboxed is None else letterboxed
    out = decoded.predict_on_batch(pixels[None].astype(np.float32))
    n = int(out["num_detections"][0])
    frame = SimpleNamespace(height=image.shape[0], width=image.shape[1])
    return {
        "boxes": boxes_from_letterbox(out["boxes"][0, :n], box),
        "scores": out["scores"][0, :n],
        "classes": out["classes"][0, :n],
        "mask": _mask_to_frame(np.asarray(out["mask"][0]), SimpleNamespace(letterbox=box), frame),
    }


def assert_same(served: dict[str, np.ndarray], i: int, ref: dict[str, np.ndarray]) -> None:
    n = int(served["num_detections"][i])
    assert n == len(ref["boxes"])
    # Both paths compute the same float64 mapping of the same float32 boxes.
    np.testing.assert_allclose(served["boxes"][i, :n], ref["boxes"], atol=1e-4)
    np.testing.assert_allclose(served["scores"][i, :n], ref["scores"], atol=1e-6)
    np.testing.assert_array_equal(served["classes"][i, :n], ref["classes"])
    assert (served["boxes"][i, n:] == 0).all() and (served["labels"][i, n:] == b"").all()
    assert served["labels"][i, :n].tolist() == [CLASSES[c].encode() for c in ref["classes"]]
    h, w = ref["mask"].shape
    assert served["image_size"][i].tolist() == [h, w]
    np.testing.assert_array_equal(served["mask"][i, :h, :w], ref["mask"])
    assert (served["mask"][i, h:] == 0).all() and (served["mask"][i, :, w:] == 0).all()


# --------------------------------------------------------------------------- letterbox


def test_graph_letterbox_matches_training_letterbox(frames):
    """Same geometry and padding as letterbox_image; pixels within one grey level of
    PIL's bilinear resize (mean under 0.35), identical where only padding is added."""
    for kind, image in frames.items():
        ref, box = letterbox_image(image, CONFIG.image_size)
        out, geometry = letterbox_graph(tf.constant(image), CONFIG.image_size)
        out = out.numpy()
        new_h, new_w = round(box.height * box.scale_y), round(box.width * box.scale_x)
        assert geometry.numpy().tolist() == [*image.shape[:2], new_h, new_w, box.pad_y, box.pad_x]
        inside = np.zeros(out.shape[:2], bool)
        inside[box.pad_y : box.pad_y + new_h, box.pad_x : box.pad_x + new_w] = True
        assert (out[~inside] == PAD_VALUE).all() and (ref[~inside] == PAD_VALUE).all()
        diff = np.abs(out - ref.astype(np.float32))
        assert diff.max() <= 1.0, kind
        assert diff.mean() < (1e-9 if kind == "pad" else 0.35), kind


def test_geometry_rounds_like_python_on_half_pixels():
    # 3x5 into 64x128: width 106.67 -> 107; 1x3: height 42.67 -> 43; 2x5 into 32x32:
    # height 12.8 -> 13; 4x7 into 2x7: width 3.5 -> 4 (half to even, as Python's round).
    for shape, size in [
        ((3, 5), (64, 128)),
        ((1, 3), (64, 128)),
        ((2, 5), (32, 32)),
        ((4, 7), (2, 7)),
    ]:
        _, box = letterbox_image(np.zeros((*shape, 3), np.uint8), size)
        _, geometry = letterbox_graph(tf.zeros((*shape, 3), tf.uint8), size)
        nh, nw = round(box.height * box.scale_y), round(box.width * box.scale_x)
        assert geometry.numpy().tolist() == [*shape, nh, nw, box.pad_y, box.pad_x]


def test_mask_nearest_index_is_pils():
    rng = np.random.default_rng(1)
    for size_in, size_out in [(39, 375), (51, 160), (107, 80), (64, 1242), (7, 3), (97, 97)]:
        source = rng.integers(0, 250, (1, size_in), dtype=np.uint8)
        pil = np.asarray(Image.fromarray(source).resize((size_out, 1), Image.Resampling.NEAREST))
        index = _pil_nearest_index(tf.constant(size_in), tf.constant(size_out)).numpy()
        np.testing.assert_array_equal(source[0, index], pil[0])


# --------------------------------------------------------------------------- serving


def test_padded_image_serves_exactly_the_in_process_outputs(module, decoded, frames):
    served = serve(module, [frames["pad"]])
    assert 0 < served["num_detections"][0] < CONFIG.max_detections  # the heads' spread
    assert_same(served, 0, in_process(decoded, frames["pad"]))


def test_resized_images_map_back_like_in_process(module, decoded, frames):
    """With the graph's letterboxed pixels the in-process mapping (boxes_from_letterbox,
    _mask_to_frame) gives the served outputs exactly; with PIL's (one grey level off
    on some pixels) the masks still agree on 99% of pixels."""
    served = serve(module, [frames["down"], frames["up"]])
    for i, kind in enumerate(["down", "up"]):
        image = frames[kind]
        letterboxed, _ = letterbox_graph(tf.constant(image), CONFIG.image_size)
        assert_same(served, i, in_process(decoded, image, letterboxed.numpy()))
        ref = in_process(decoded, image)
        h, w = image.shape[:2]
        assert (served["mask"][i, :h, :w] == ref["mask"]).mean() > 0.99


def test_batch_of_different_sizes_pads_masks_to_the_largest(module, decoded, frames):
    images = [frames["up"], frames["pad"], frames["down"]]
    served = serve(module, images)
    assert served["mask"].shape == (3, 160, 300) and served["mask"].dtype == np.uint8
    assert served["image_size"].tolist() == [[48, 80], [64, 100], [160, 300]]
    assert served["boxes"].shape == (3, CONFIG.max_detections, 4)
    assert served["classes"].dtype == np.int32 and served["num_detections"].dtype == np.int32
    alone = serve(module, [frames["pad"]])
    assert_same(served, 1, in_process(decoded, frames["pad"]))
    np.testing.assert_array_equal(served["mask"][1, :64, :100], alone["mask"][0])
    n = int(served["num_detections"][2])
    w, h = 300, 160
    assert (served["boxes"][2, :n] >= 0).all()
    assert (served["boxes"][2, :n, [0, 2]] <= w).all() and (
        served["boxes"][2, :n, [1, 3]] <= h
    ).all()


def test_image_tensor_signature_equals_bytes(module, frames):
    image = frames["down"]
    by_tensor = {
        k: v.numpy() for k, v in module.serve_images(tf.constant(np.stack([image, image]))).items()
    }
    by_bytes = serve(module, [image])
    assert set(by_tensor) == set(by_bytes)
    for key, value in by_bytes.items():
        if value.dtype == np.float32:  # a batch of 2 vs 1: convolutions differ by ~1e-5
            np.testing.assert_allclose(by_tensor[key][1], value[0], atol=1e-4, err_msg=key)
        else:
            np.testing.assert_array_equal(by_tensor[key][1], value[0], err_msg=key)


def test_non_image_bytes_and_empty_batches_fail_with_a_clear_error(module, frames):
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a PNG, JPEG, GIF or BMP"):
        module.serve_bytes(tf.constant([png(frames["pad"]), b"<html>not an image</html>"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="image_bytes: the batch is empty"):
        module.serve_bytes(tf.constant([], tf.string))


# --------------------------------------------------------------------------- export


# The harness checks every domain's export in a fresh TensorFlow-only process in `make
# test` (tests/harness); this fuller check of the driving export (mixed sizes, all three
# warmup requests) runs with the `large` tests.
@pytest.mark.large
def test_export_loads_and_serves_in_a_fresh_tensorflow_process(model, frames, tmp_path):
    examples = [png(frames["down"]), png(frames["up"])]
    spec = perception_serving_spec(
        model, CONFIG, CLASSES, MASK_NAMES, examples, metadata={"run": "/runs/r1"}
    )
    assert [len(r["image_bytes"]) for r in spec.warmup] == [1, 1, 2]
    assert spec.expected[2]["mask"].shape == (2, 160, 300)
    result = export_saved_model(spec, tmp_path, "perception")
    # export_saved_model ran serving_default in `python -c "import tensorflow ..."` on the
    # warmup requests and compared every output with the in-process signature's.
    assert result.verification["checked"] and result.verification["requests"] == 3
    assert result.verification["max_abs_diff"] <= 1e-4
    info = signature_info(result.path)
    assert set(info) == {"serving_default", "serving_images"}
    outputs = info["serving_default"]["outputs"]
    assert outputs["boxes"] == {"dtype": "float32", "shape": [None, CONFIG.max_detections, 4]}
    assert outputs["mask"]["dtype"] == "uint8" and outputs["labels"]["dtype"] == "string"
    assert info["serving_default"]["inputs"] == {
        "image_bytes": {"dtype": "string", "shape": [None]}
    }
    meta = json.loads((result.path / "assets.extra" / "deepfield.json").read_text())
    assert meta["mask_names"] == MASK_NAMES and meta["class_names"] == CLASSES
    assert meta["image_size"] == [64, 128] and meta["run"] == "/runs/r1"
    assert "models.config" in {p.name for p in tmp_path.iterdir()}


# --------------------------------------------------------------------------- TFLite


def test_tflite_matches_keras_and_numpy_nms_matches_the_detector(model, decoded, frames, tmp_path):
    report = export_tflite(model, CONFIG, tmp_path / "perception.tflite", CLASSES, MASK_NAMES)
    assert (tmp_path / "perception.tflite").stat().st_size == report["size_bytes"]
    saved = json.loads((tmp_path / "perception.tflite.json").read_text())
    assert saved["outputs"]["boxes"]["shape"] == [1, CONFIG.levels.num_locations, 4]
    assert saved["outputs"]["mask"] == {"shape": [1, 64, 128], "dtype": "uint8"}
    lite = PerceptionTFLite(tmp_path / "perception.tflite")
    for kind in ("down", "up"):
        letterboxed, box = letterbox_image(frames[kind], CONFIG.image_size)
        out = lite.predict(letterboxed)
        ref = decoded.predict_on_batch(letterboxed[None].astype(np.float32))
        # Keras model of the same graph: boxes within 1e-3 px, scores 1e-5, masks equal.
        dense = tflite_model(model, CONFIG).predict_on_batch(letterboxed[None].astype(np.float32))
        np.testing.assert_allclose(out["boxes"], dense["boxes"][0], atol=1e-3)
        np.testing.assert_allclose(out["scores"], dense["scores"][0], atol=1e-5)
        np.testing.assert_array_equal(out["mask"], ref["mask"][0])
        boxes, scores, classes = decode_detections(out["boxes"], out["scores"], CONFIG)
        n = int(ref["num_detections"][0])
        assert 0 < len(boxes) == n < CONFIG.max_detections
        np.testing.assert_allclose(boxes, ref["boxes"][0, :n], atol=1e-3)
        np.testing.assert_allclose(scores, ref["scores"][0, :n], atol=1e-5)
        np.testing.assert_array_equal(classes, ref["classes"][0, :n])
        assert boxes_from_letterbox(boxes, box).shape == (n, 4)


def test_nms_suppresses_overlaps_above_the_threshold_per_score_order():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], float)
    scores = np.array([0.5, 0.9, 0.4, 0.8])
    # IoU(1, 0) = 90/110 = 0.82 goes; IoU(1, 3) = 45/105 = 0.43 stays at 0.6, goes at 0.4.
    assert nms(boxes, scores, 0.6).tolist() == [1, 3, 2]
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
