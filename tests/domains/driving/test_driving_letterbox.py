"""Box geometry and letterboxing: exact values and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from domains.driving.boxes import (
    clip_boxes,
    iou_matrix,
    overlap_of_first,
    xyxy_to_yolo,
    yolo_to_xyxy,
)
from domains.driving.letterbox import (
    PAD_VALUE,
    boxes_from_letterbox,
    boxes_to_letterbox,
    letterbox_geometry,
    letterbox_image,
)


def test_iou_and_overlap_known_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0.0, 1.0]])
    # a small box wholly inside a big one: IoU small, overlap of the small one 1
    np.testing.assert_allclose(overlap_of_first([[2, 2, 4, 4]], [[0, 0, 10, 10]]), [[1.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_clip_and_yolo_round_trip():
    boxes, changed = clip_boxes(np.array([[-5, 10, 50, 120], [1, 2, 3, 4]]), 100, 40)
    np.testing.assert_array_equal(boxes, [[0, 10, 40, 100], [1, 2, 3, 4]])
    np.testing.assert_array_equal(changed, [True, False])
    xyxy = np.array([[10.0, 20.0, 110.0, 60.0]], np.float32)
    np.testing.assert_allclose(
        yolo_to_xyxy(xyxy_to_yolo(xyxy, 375, 1242), 375, 1242), xyxy, atol=1e-3
    )
    np.testing.assert_allclose(yolo_to_xyxy([[0.5, 0.5, 1.0, 1.0]], 375, 1242), [[0, 0, 1242, 375]])


@pytest.mark.parametrize("shape", [(375, 1242), (480, 320), (64, 64), (1, 7)])
def test_letterbox_image_and_boxes(shape):
    h, w = shape
    image = np.zeros((h, w, 3), np.uint8)
    box = np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], np.float32)
    x1, y1, x2, y2 = np.round(box[0]).astype(int)
    image[y1:y2, x1:x2] = 255
    out, lb = letterbox_image(image, 128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    # the long side fills the input; the short side is padded evenly
    assert max(round(w * lb.scale_x), round(h * lb.scale_y)) == 128
    if w > h:
        assert lb.pad_x == 0 and np.all(out[: lb.pad_y] == PAD_VALUE)
    mapped = boxes_to_letterbox(box, lb)
    back = boxes_from_letterbox(mapped, lb)
    np.testing.assert_allclose(back, box, atol=1e-3)
    if min(h, w) >= 64:  # the box lands on the bright pixels
        cx, cy = (mapped[0, 0] + mapped[0, 2]) / 2, (mapped[0, 1] + mapped[0, 3]) / 2
        assert out[int(cy), int(cx)].min() > 200
        assert out[int(mapped[0, 1]) - 3, int(cx)].max() < 60


def test_letterbox_to_rectangle_mask_and_clip():
    lb = letterbox_geometry(375, 1242, (384, 640))
    assert (lb.out_height, lb.out_width, lb.pad_x) == (384, 640, 0)
    assert lb.pad_y == (384 - round(375 * 640 / 1242)) // 2
    mask = np.zeros((375, 1242), np.uint8)
    mask[200:, :] = 1
    mask[300:, 600:620] = 2
    out, _ = letterbox_image(mask, (384, 640), nearest=True, fill=0)
    assert set(np.unique(out)) == {0, 1, 2}  # nearest: no blended ids
    # a box reaching into the padding maps back clipped to the image
    back = boxes_from_letterbox([[-10, 0, 700, 384]], lb)
    np.testing.assert_allclose(back, [[0, 0, 1242, 375]])
    float_out, _ = letterbox_image(np.ones((10, 20, 3), np.float32), 40, fill=0.0)
    assert float_out.dtype == np.float32 and float_out[20, 20, 0] == pytest.approx(1.0)
