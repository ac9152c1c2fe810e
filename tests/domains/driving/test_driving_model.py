"""The multi-task perception network: FCOS targets, losses, in-graph decoding, the input
pipeline's joint augmentation, and a tiny model training on simulated frames."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from domains.driving.letterbox import letterbox_geometry
from domains.driving.model import (
    FCOSDecode,
    PerceptionConfig,
    compile_perception,
    detector,
    perception_model,
)
from domains.driving.pipeline import Augment, PerceptionData, Sample, augment
from domains.driving.targets import FCOSAssigner, Levels, centerness
from domains.driving.train_loop import evaluate_perception, iou_from_confusion, mask_confusion
from shared.errors import UserError
from shared.zoo.detection_losses import (
    CenternessLoss,
    CIoUBoxLoss,
    FocalClassLoss,
    SegmentationLoss,
)

LEVELS = Levels((160, 320), (8, 16, 32))
TINY = {"width": 8, "fpn_channels": 16, "seg_channels": 8, "head_convs": 1}


def level_of(index: int, levels: Levels = LEVELS) -> tuple[int, int, int]:
    """(stride, row, column) of a flat location index."""
    for (h, w), stride in zip(levels.shapes, levels.strides, strict=True):
        if index < h * w:
            return stride, index // w, index % w
        index -= h * w
    raise IndexError(index)


# --------------------------------------------------------------------------- targets


def test_levels_shapes_ranges_and_location_order():
    assert LEVELS.shapes == [(20, 40), (10, 20), (5, 10)]
    assert LEVELS.size_ranges == [(0.0, 64), (64, 128), (128, np.inf)]
    centres, strides, _ = LEVELS.locations()
    assert LEVELS.num_locations == len(centres) == 1050
    # Row-major, finest level first, at cell centres.
    np.testing.assert_array_equal(centres[:2], [[4, 4], [12, 4]])
    np.testing.assert_array_equal(centres[40], [4, 12])
    np.testing.assert_array_equal(centres[800], [8, 8])
    assert strides[799] == 8 and strides[800] == 16 and strides[-1] == 32


def test_small_box_positives_on_the_finest_level_with_exact_distances():
    assigner = FCOSAssigner(LEVELS, num_classes=2)
    cls, box, ctr = assigner.assign(np.array([[40, 50, 70, 62]]), np.array([1]))
    positive = np.nonzero(cls.sum(1))[0]
    # Inside the box and within 1.5 strides (12 px) of its centre (55, 56):
    # x in {44, 52, 60} (68 is 13 px away), y in {52, 60}.
    assert [level_of(i) for i in positive] == [(8, r, c) for r in (6, 7) for c in (5, 6, 7)]
    assert cls[positive, 1].tolist() == [1.0] * 6 and cls[positive, 0].sum() == 0
    first = positive[0]  # location (44, 52)
    np.testing.assert_allclose(box[first, :4], [4, 2, 26, 10])
    expected = math.sqrt(4 / 26 * 2 / 10)
    assert box[first, 4] == pytest.approx(expected) and ctr[first, 0] == pytest.approx(expected)
    negatives = np.setdiff1d(np.arange(len(cls)), positive)
    assert (ctr[negatives] == -1).all() and (box[negatives] == 0).all()


def test_large_box_goes_to_the_levels_whose_size_range_holds_it():
    assigner = FCOSAssigner(LEVELS, num_classes=1)
    cls, box, _ = assigner.assign(np.array([[100, 20, 300, 150]]), np.array([0]))
    positive = np.nonzero(cls[:, 0])[0]
    found = [level_of(i) for i in positive]
    # Centre (200, 85). P3: every inside location is > 64 px from a side: none.
    # P4: x in {184, 200, 216}, y in {72, 88, 104} (within 24 px), max distance < 128.
    # P5: only x = 240 (left distance 140 >= 128), y in {48, 80, 112}.
    assert [f for f in found if f[0] == 8] == []
    assert [f for f in found if f[0] == 16] == [(16, r, c) for r in (4, 5, 6) for c in (11, 12, 13)]
    assert [f for f in found if f[0] == 32] == [(32, r, 7) for r in (1, 2, 3)]
    centres, _, _ = LEVELS.locations()
    x, y = centres[positive].T
    np.testing.assert_allclose(box[positive, :4], np.stack([x - 100, y - 20, 300 - x, 150 - y], 1))


def test_overlapping_boxes_location_takes_the_smaller_and_empty_frame_is_background():
    assigner = FCOSAssigner(LEVELS, num_classes=2)
    cls, box, _ = assigner.assign(np.array([[0, 0, 40, 40], [10, 10, 30, 30]]), np.array([0, 1]))
    at_20_20 = 2 * 40 + 2  # row 2, column 2 of P3: location (20, 20)
    assert cls[at_20_20].tolist() == [0, 1]
    np.testing.assert_allclose(box[at_20_20, :4], [10, 10, 10, 10])
    cls, box, ctr = assigner.assign(np.zeros((0, 4)), np.zeros(0))
    assert cls.sum() == 0 and (ctr == -1).all()


def test_ignore_regions_mark_background_locations_only():
    assigner = FCOSAssigner(LEVELS, num_classes=1)
    ignore = np.array([[0, 0, 48, 24], [36, 44, 80, 70]])  # the second covers box A
    cls, _, _ = assigner.assign(np.array([[40, 50, 70, 62]]), np.array([0]), ignore)
    ignored = np.nonzero(cls[:, 0] == -1)[0]
    positive = np.nonzero(cls[:, 0] == 1)[0]
    assert len(positive) == 6  # the box's positives stay positive
    # P3 centres strictly inside: 6 x 3 in the first region, 5 x 3 less the 6 positives
    # in the second; P4: x 8, 24, 40 at y 8, and x 40, 56, 72 at y 56; P5: (16, 16), (48, 48).
    assert len([i for i in ignored if level_of(i)[0] == 8]) == 6 * 3 + 5 * 3 - 6
    assert [level_of(i) for i in ignored if level_of(i)[0] > 8] == [
        *[(16, 0, c) for c in (0, 1, 2)],
        *[(16, 3, c) for c in (2, 3, 4)],
        (32, 0, 0),
        (32, 1, 1),
    ]
    loss = FocalClassLoss()
    low = np.where(cls > 0, 20.0, -20.0).astype(np.float32)[None]
    high_in_ignore = np.where(cls < 0, 20.0, low[0]).astype(np.float32)[None]
    assert float(loss(cls[None], high_in_ignore)) == pytest.approx(float(loss(cls[None], low)))


def test_centerness_values():
    np.testing.assert_allclose(
        centerness(np.array([[5, 5, 5, 5], [1, 2, 3, 4], [0, 1, 1, 1]])),
        [1.0, math.sqrt(1 / 3 * 2 / 4), 0.0],
        rtol=1e-6,
    )


# --------------------------------------------------------------------------- losses


@pytest.fixture(scope="module")
def frame_targets():
    assigner = FCOSAssigner(LEVELS, num_classes=2)
    boxes = np.array([[40, 50, 70, 62], [100, 20, 300, 150], [200, 120, 230, 135]])
    cls, box, ctr = assigner.assign(boxes, np.array([0, 1, 0]))
    return cls[None], box[None], ctr[None]


def test_focal_loss_zero_for_perfect_large_for_wrong(frame_targets):
    cls = frame_targets[0]
    loss = FocalClassLoss()
    assert float(loss(cls, np.where(cls > 0, 20.0, -20.0))) < 1e-4
    assert float(loss(cls, np.where(cls > 0, -5.0, 5.0))) > 10


def test_ciou_loss_zero_for_perfect_large_for_wrong(frame_targets):
    box = frame_targets[1]
    loss = CIoUBoxLoss()
    assert float(loss(box, box[..., :4])) < 1e-4
    shifted = box[..., :4] * np.array([2.0, 0.5, 0.5, 2.0], np.float32)  # moved and resized
    assert float(loss(box, shifted)) > 0.4
    # Background rows contribute nothing, whatever is predicted there.
    noisy = np.where(box[..., 4:5] > 0, box[..., :4], 1e4).astype(np.float32)
    assert float(loss(box, noisy)) < 1e-4


def test_centerness_loss_zero_at_target_large_when_wrong(frame_targets):
    ctr = frame_targets[2]
    target = np.clip(ctr, 1e-6, 1 - 1e-6)
    logits = np.log(target / (1 - target)).astype(np.float32)
    loss = CenternessLoss()
    assert abs(float(loss(ctr, logits))) < 1e-4
    assert float(loss(ctr, np.where(ctr >= 0, -8.0, 0.0).astype(np.float32))) > 2


def test_segmentation_loss_zero_for_perfect_large_for_wrong():
    labels = np.random.default_rng(0).integers(0, 3, (2, 8, 16)).astype(np.uint8)
    perfect = 30.0 * np.eye(3, dtype=np.float32)[labels]
    loss = SegmentationLoss(dice_weight=1.0)
    assert float(loss(labels, perfect)) < 1e-3
    wrong = 30.0 * np.eye(3, dtype=np.float32)[(labels + 1) % 3]
    assert float(loss(labels, wrong)) > 10
    assert float(SegmentationLoss(dice_weight=0.0)(labels, perfect)) < 1e-3


# --------------------------------------------------------------------------- decoding


def test_decode_and_nms_return_the_expected_boxes():
    levels = Levels((64, 128), (8, 16))
    centres, _, _ = levels.locations()
    n = levels.num_locations
    logits = np.full((1, n, 2), -12.0, np.float32)
    ltrb = np.ones((1, n, 4), np.float32)
    ctr = np.full((1, n, 1), 12.0, np.float32)
    truth = {0: np.array([20, 10, 60, 30], np.float32), 1: np.array([70, 20, 120, 60], np.float32)}
    # Three neighbouring locations predict each box (NMS keeps one); the best location
    # carries logit 3, the others 1 and 0.5 with a slightly different box.
    for cls_id, (target, picks) in {
        0: (truth[0], [(2, 4), (2, 3), (1, 4)]),
        1: (truth[1], [(5, 11), (5, 12), (4, 11)]),
    }.items():
        for rank, (row, col) in enumerate(picks):
            index = row * 16 + col
            x, y = centres[index]
            box = target + (0 if rank == 0 else np.array([1, -1, 1, 1], np.float32))
            ltrb[0, index] = [x - box[0], y - box[1], box[2] - x, box[3] - y]
            logits[0, index, cls_id] = [3.0, 1.0, 0.5][rank]
    decode = FCOSDecode((64, 128), (8, 16), max_detections=10, score_threshold=0.3)
    out = decode(tf.constant(logits), tf.constant(ltrb), tf.constant(ctr))
    assert int(out["num_detections"][0]) == 2
    boxes, scores, classes = (np.asarray(out[k][0, :2]) for k in ("boxes", "scores", "classes"))
    assert sorted(classes.tolist()) == [0, 1]
    for k in range(2):
        np.testing.assert_allclose(boxes[k], truth[int(classes[k])], atol=1e-4)
    expected = math.sqrt(1 / (1 + math.exp(-3.0)) * 1 / (1 + math.exp(-12.0)))
    np.testing.assert_allclose(scores, [expected, expected], rtol=1e-5)
    # Padding past num_detections is zero.
    assert float(np.abs(np.asarray(out["boxes"][0, 2:])).sum()) == 0.0


def test_config_rejects_bad_settings():
    with pytest.raises(UserError, match="detection, segmentation or both"):
        PerceptionConfig(detection=False, segmentation=False)
    with pytest.raises(UserError, match="multiples of 32"):
        PerceptionConfig(image_size=(100, 320))


# --------------------------------------------------------------------------- pipeline


def _striped_sample() -> Sample:
    """A 64x128 frame: one white box at (30, 20)-(50, 36), mask 1 exactly under it."""
    image = np.zeros((64, 128, 3), np.uint8)
    mask = np.zeros((64, 128), np.uint8)
    image[20:36, 30:50] = 255
    mask[20:36, 30:50] = 1
    box = np.array([[30, 20, 50, 36]], np.float32)
    return Sample(image, mask, box, np.array([0], np.int32), letterbox_geometry(64, 128, (64, 128)))


def test_augmentations_move_image_mask_and_boxes_together():
    moved = 0
    for seed in range(12):
        out = augment(
            _striped_sample(), Augment(flip=0.5, scale=0.3, color=0.0), np.random.default_rng(seed)
        )
        if not len(out.boxes):
            continue
        x1, y1, x2, y2 = np.round(out.boxes[0]).astype(int)
        inner = (slice(y1 + 1, y2 - 1), slice(x1 + 1, x2 - 1))
        assert (out.mask[inner] == 1).all() and (out.image[inner] > 200).all()
        # Nothing marked outside the box (one pixel of resampling slack).
        outside = np.ones_like(out.mask, bool)
        outside[max(0, y1 - 1) : y2 + 1, max(0, x1 - 1) : x2 + 1] = False
        assert (out.mask[outside] == 0).all()
        moved += not np.allclose(out.boxes[0], [30, 20, 50, 36])
    assert moved >= 8


def test_flip_mirrors_boxes_and_colour_jitter_leaves_geometry():
    flipped = augment(
        _striped_sample(), Augment(flip=1.0, scale=0.0, color=0.0), np.random.default_rng(0)
    )
    np.testing.assert_allclose(flipped.boxes, [[78, 20, 98, 36]])
    assert (flipped.mask[20:36, 78:98] == 1).all() and flipped.mask.sum() == 20 * 16
    jittered = augment(
        _striped_sample(), Augment(flip=0.0, scale=0.0, color=0.3), np.random.default_rng(1)
    )
    np.testing.assert_array_equal(jittered.mask, _striped_sample().mask)
    assert not np.array_equal(jittered.image, _striped_sample().image)


def test_ignore_regions_follow_flip_and_scale():
    sample = _striped_sample()
    sample.ignore = np.array([[0, 0, 10, 8]], np.float32)
    flipped = augment(sample, Augment(flip=1.0, scale=0.0, color=0.0), np.random.default_rng(0))
    np.testing.assert_allclose(flipped.ignore, [[118, 0, 128, 8]])
    zoomed = augment(sample, Augment(flip=0.0, scale=0.3, color=0.0), np.random.default_rng(4))
    dx = zoomed.boxes[0, 0] - 30 * (zoomed.boxes[0, 2] - zoomed.boxes[0, 0]) / 20
    scale = (zoomed.boxes[0, 2] - zoomed.boxes[0, 0]) / 20
    expected = np.clip(np.array([0, 0, 10, 8]) * scale + [dx, 0, dx, 0], 0, 128)
    np.testing.assert_allclose(zoomed.ignore[0, [0, 2]], expected[[0, 2]], atol=0.6)


def test_mostly_cut_boxes_become_ignore_regions():
    from domains.driving.pipeline import _scale_crop

    sample = _striped_sample()
    sample.boxes = np.array([[0, 20, 10, 36]], np.float32)  # on the left edge
    dropped = 0
    for seed in range(20):
        out = _scale_crop(sample, 1.3, np.random.default_rng(seed))
        if len(out.boxes):
            assert out.boxes[0, 2] - out.boxes[0, 0] >= 0.4 * 13 - 1e-3
            assert not len(out.ignore)
        elif len(out.ignore):  # partly visible: what is left is ignored
            dropped += 1
            assert out.ignore.shape == (1, 4) and out.ignore[0, 0] == 0
            assert 0 < out.ignore[0, 2] < 0.4 * 13
    assert dropped >= 2


# --------------------------------------------------------------------------- tiny model


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from domains.driving.simulate import simulate
    from domains.driving.yolo import read_yolo

    folder = tmp_path_factory.mktemp("sim")
    simulate(
        folder,
        10,
        seed=5,
        image_size=(128, 64),
        splits=(0.8, 0.0, 0.2),
        warmup_steps=(0, 3),
        progress=False,
    )
    return read_yolo(folder)


@pytest.fixture(scope="module")
def trained(simulated):
    """A tiny joint model, 6 epochs of 2 batches on 8 frames: per-epoch losses."""
    config = PerceptionConfig(image_size=(64, 128), **TINY)
    keras.utils.set_random_seed(0)
    model = perception_model(config)
    compile_perception(model, config, keras.optimizers.Adam(3e-3))
    data = PerceptionData(simulated.splits["train"], config)
    ds = data.dataset(4, training=True, seed=0, options=Augment.off())
    history = model.fit(ds, epochs=6, verbose=0)
    return config, model, history.history


def test_pipeline_batches_and_is_seeded(simulated):
    config = PerceptionConfig(image_size=(64, 128), **TINY)
    data = PerceptionData(simulated.splits["train"], config)
    first = next(iter(data.dataset(4, training=True, seed=3)))
    again = next(iter(data.dataset(4, training=True, seed=3)))
    image, targets = first
    assert image.shape == (4, 64, 128, 3) and image.dtype == tf.float32
    assert targets["class_logits"].shape == (4, 168, 1)  # 8*16 + 4*8 + 2*4 locations
    assert targets["box_ltrb"].shape == (4, 168, 5)
    assert targets["mask_logits"].shape == (4, 64, 128) and targets["mask_logits"].dtype == tf.uint8
    np.testing.assert_array_equal(image, again[0])
    assert float(tf.reduce_sum(targets["class_logits"])) > 0


def test_tiny_model_trains_loss_decreases(trained):
    _, _, history = trained
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    for name in ("class_logits_loss", "box_ltrb_loss", "mask_logits_loss"):
        assert history[name][-1] < history[name][0]


def test_decoded_model_shapes_dtypes_and_evaluation(trained, simulated):
    config, model, _ = trained
    out = detector(model, config).predict(np.zeros((3, 64, 128, 3), np.float32), verbose=0)
    assert out["boxes"].shape == (3, 100, 4) and out["boxes"].dtype == np.float32
    assert out["scores"].shape == (3, 100) and out["classes"].dtype == np.int32
    assert out["num_detections"].shape == (3,) and out["num_detections"].dtype == np.int32
    assert out["mask"].shape == (3, 64, 128) and out["mask"].dtype == np.uint8
    metrics = evaluate_perception(model, simulated.splits["test"], config, simulated.class_names)
    for key in ("map", "map_50", "map_75", "ap_50_vehicle", "iou_road", "iou_lane", "miou"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["num_examples"] == 2 and metrics["frames_per_second"] > 0


def test_model_round_trips_through_keras_file(trained, tmp_path):
    config, model, _ = trained
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 128, 3)).astype(np.float32)
    for name, value in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[name], value, atol=1e-5)


def test_single_head_configs_have_only_their_outputs():
    det = perception_model(PerceptionConfig(image_size=(64, 128), segmentation=False, **TINY))
    seg = perception_model(PerceptionConfig(image_size=(64, 128), detection=False, **TINY))
    assert set(det.output) == {"class_logits", "box_ltrb", "centerness_logits"}
    assert set(seg.output) == {"mask_logits"}
    assert seg.count_params() < det.count_params()


def test_mask_iou_from_confusion():
    truth = np.array([[0, 1, 1, 2]])
    pred = np.array([[0, 1, 2, 2]])
    ious = iou_from_confusion(mask_confusion(truth, pred, 3))
    np.testing.assert_allclose(ious, [1.0, 0.5, 0.5])


def test_feature_pyramid_handles_odd_sides_and_serializes():
    from shared.blocks import FeaturePyramid

    maps = [
        np.ones((1, 5, 7, 4), np.float32),
        np.ones((1, 3, 4, 8), np.float32),
        np.ones((1, 2, 2, 16), np.float32),
    ]
    fpn = FeaturePyramid(6)
    out = fpn(maps)
    assert [tuple(o.shape) for o in out] == [(1, 5, 7, 6), (1, 3, 4, 6), (1, 2, 2, 6)]
    assert FeaturePyramid.from_config(fpn.get_config()).channels == 6
