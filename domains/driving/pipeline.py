"""Frames -> tf.data: letterboxed images with FCOS and mask targets, augmented together.

Each frame is decoded and letterboxed once (`letterbox.py`'s rules: one scale, centred,
grey padding for the image and background 0 for the mask) and kept in memory; every
epoch then draws seeded augmentations in numpy that move image, mask and boxes
together (horizontal flip, random scale with a random crop or pad, colour jitter),
and the FCOS targets are assigned after them. Same seed, same batches.

The element is (image float32 0-255 (H, W, 3), targets) where targets holds
`class_logits` / `box_ltrb` / `centerness_logits` (see `targets.FCOSAssigner`) when
detection is on and `mask_logits` (H, W) uint8 class ids when segmentation is on: the
training network's output names, so `fit` pairs them with the losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf
from PIL import Image

from domains.driving.detection_set import Frame
from domains.driving.letterbox import PAD_VALUE, Letterbox, boxes_to_letterbox, letterbox_image
from domains.driving.model import MASK_OUTPUT, PerceptionConfig
from domains.driving.targets import FCOSAssigner
from shared.errors import UserError

# A box cut by a crop is kept if this share of its area is still in the picture.
MIN_VISIBLE = 0.4
MIN_SIDE_PX = 2.0


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths; `Augment.off()` for evaluation."""

    flip: float = 0.5  # probability of a horizontal flip
    scale: float = 0.25  # zoom drawn from [1 - scale, 1 + scale], then crop or pad
    color: float = 0.15  # brightness and per-channel gain, +- this share

    @classmethod
    def off(cls) -> Augment:
        return cls(flip=0.0, scale=0.0, color=0.0)


@dataclass(eq=False)
class Sample:
    """One frame in model-input pixels."""

    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray | None  # (H, W) uint8 or None
    boxes: np.ndarray  # (M, 4) float32 xyxy
    classes: np.ndarray  # (M,) int32
    letterbox: Letterbox
    # Regions whose background locations get no class loss (KITTI DontCare), xyxy.
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))


def load_sample(frame: Frame, size: tuple[int, int], with_mask: bool) -> Sample:
    """Decode and letterbox one frame (and its mask) into `size` (height, width)."""
    with Image.open(frame.image_path) as im:
        pixels = np.asarray(im.convert("RGB"))
    image, box = letterbox_image(pixels, size)
    mask = None
    if with_mask:
        if frame.mask_path is None:
            raise UserError(f"{frame.image_path} has no mask, and segmentation is on")
        with Image.open(frame.mask_path) as im:
            mask, _ = letterbox_image(np.asarray(im), size, nearest=True, fill=0)
    return Sample(
        image,
        mask,
        boxes_to_letterbox(frame.boxes, box),
        frame.classes.copy(),
        box,
        boxes_to_letterbox(frame.ignore_boxes, box),
    )


def _flip_x(boxes: np.ndarray, width: int) -> np.ndarray:
    out = boxes.copy()
    out[:, [0, 2]] = width - boxes[:, [2, 0]]
    return out


def _flip(sample: Sample) -> Sample:
    w = sample.image.shape[1]
    mask = None if sample.mask is None else sample.mask[:, ::-1]
    return replace(
        sample,
        image=sample.image[:, ::-1],
        mask=mask,
        boxes=_flip_x(sample.boxes, w),
        ignore=_flip_x(sample.ignore, w),
    )


def _scale_crop(sample: Sample, factor: float, rng: np.random.Generator) -> Sample:
    """Zoom by `factor`, then cut (zoom in) or pad (zoom out) back to the input size at
    a random offset; boxes follow and are clipped, mostly-cut boxes become ignore regions."""
    h, w = sample.image.shape[:2]
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    image = np.asarray(Image.fromarray(sample.image).resize((nw, nh), Image.Resampling.BILINEAR))
    # Offset of the zoomed picture on the canvas: negative cuts, positive pads.
    ox = int(rng.integers(min(0, w - nw), max(0, w - nw) + 1))
    oy = int(rng.integers(min(0, h - nh), max(0, h - nh) + 1))
    src = (
        slice(max(0, -oy), max(0, -oy) + min(h, nh)),
        slice(max(0, -ox), max(0, -ox) + min(w, nw)),
    )
    dst = (slice(max(0, oy), max(0, oy) + min(h, nh)), slice(max(0, ox), max(0, ox) + min(w, nw)))
    out = np.full_like(sample.image, PAD_VALUE)
    out[dst] = image[src]
    mask = None
    if sample.mask is not None:
        zoomed = np.asarray(Image.fromarray(sample.mask).resize((nw, nh), Image.Resampling.NEAREST))
        mask = np.zeros_like(sample.mask)
        mask[dst] = zoomed[src]
    scale = np.array([nw / w, nh / h] * 2, np.float32)
    offset = np.array([ox, oy] * 2, np.float32)
    boxes = sample.boxes * scale + offset
    clipped = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
    ignore = np.clip(sample.ignore * scale + offset, 0, [w, h, w, h]).astype(np.float32)

    def area(b):
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    keep = (
        (area(clipped) >= MIN_VISIBLE * np.maximum(area(boxes), 1e-6))
        & (clipped[:, 2] - clipped[:, 0] >= MIN_SIDE_PX)
        & (clipped[:, 3] - clipped[:, 1] >= MIN_SIDE_PX)
    )
    # What is left of a mostly-cut box is neither object nor background: ignored.
    ignore = np.concatenate([ignore, clipped[~keep & (area(clipped) > 0)]])
    ignore = ignore[(ignore[:, 2] > ignore[:, 0]) & (ignore[:, 3] > ignore[:, 1])]
    return replace(
        sample,
        image=out,
        mask=mask,
        boxes=clipped[keep],
        classes=sample.classes[keep],
        ignore=ignore,
    )


def _color(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    gain = (1 + rng.uniform(-strength, strength)) * (1 + rng.uniform(-strength, strength, 3) / 2)
    shift = rng.uniform(-strength, strength) * 64
    return np.clip(image.astype(np.float32) * gain + shift, 0, 255).astype(np.uint8)


def augment(sample: Sample, options: Augment, rng: np.random.Generator) -> Sample:
    """One random draw of `options` applied to image, mask and boxes together."""
    if options.flip and rng.random() < options.flip:
        sample = _flip(sample)
    if options.scale:
        sample = _scale_crop(sample, float(rng.uniform(1 - options.scale, 1 + options.scale)), rng)
    if options.color:
        sample = replace(sample, image=_color(sample.image, options.color, rng))
    return sample


class PerceptionData:
    """Frames of one split, loaded once, served as a tf.data.Dataset of batches."""

    def __init__(self, frames: Sequence[Frame], config: PerceptionConfig):
        if not frames:
            raise UserError("no frames to train or evaluate on")
        self.config = config
        self.frames = list(frames)
        self.samples = [load_sample(f, config.image_size, config.segmentation) for f in self.frames]
        self.assigner = (
            FCOSAssigner(config.levels, config.num_classes) if config.detection else None
        )

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self, sample: Sample) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.assigner is not None:
            cls, box, ctr = self.assigner.assign(sample.boxes, sample.classes, sample.ignore)
            out.update(class_logits=cls, box_ltrb=box, centerness_logits=ctr)
        if self.config.segmentation:
            out[MASK_OUTPUT] = np.ascontiguousarray(sample.mask)
        return out

    def _signature(self):
        h, w = self.config.image_size
        n, c = self.config.levels.num_locations, self.config.num_classes
        targets = {}
        if self.config.detection:
            targets.update(
                class_logits=tf.TensorSpec((n, c), tf.float32),
                box_ltrb=tf.TensorSpec((n, 5), tf.float32),
                centerness_logits=tf.TensorSpec((n, 1), tf.float32),
            )
        if self.config.segmentation:
            targets[MASK_OUTPUT] = tf.TensorSpec((h, w), tf.uint8)
        return tf.TensorSpec((h, w, 3), tf.float32), targets

    def dataset(
        self,
        batch_size: int,
        *,
        training: bool,
        seed: int = 0,
        options: Augment | None = None,
    ) -> tf.data.Dataset:
        """Batches of (image, targets). Training: reshuffled and re-augmented every
        epoch (each pass over the dataset is a new epoch), seeded by `seed`."""
        options = options if options is not None else (Augment() if training else Augment.off())
        epoch = [0]

        def generate():
            rng = np.random.default_rng([seed, epoch[0]])
            epoch[0] += 1
            order = rng.permutation(len(self.samples)) if training else range(len(self.samples))
            for index in order:
                sample = self.samples[index]
                if training:
                    sample = augment(
                        sample, options, np.random.default_rng([seed, epoch[0], index])
                    )
                yield sample.image.astype(np.float32), self.targets(sample)

        ds = tf.data.Dataset.from_generator(generate, output_signature=self._signature())
        # Known length, so Keras sizes its epochs and progress bar from the first pass.
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(self.samples)))
        return ds.batch(batch_size, drop_remainder=training).prefetch(2)
