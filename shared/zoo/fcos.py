"""FCOS with a segmentation head: the zoo's multi-task perception network (`fcos`).

One ResNet + FPN trunk, an FCOS detection head (anchor-free, Tian et al. 2019/2020)
and a road / lane-marking segmentation head, either head switchable off. It lives in
the zoo, not in the driving domain, so that `import shared.zoo` alone registers every
layer a saved perception model needs (the run's `model.keras` loads without domain
code); the driving domain adds the targets, losses and data.

`perception_model(config)` is the training network: image (0-255 floats, letterboxed
to `config.image_size`) -> dict of raw head outputs, named as the losses in
`compile_perception` expect:

- `class_logits` (B, N, classes), `box_ltrb` (B, N, 4) distances in input pixels,
  `centerness_logits` (B, N, 1): every location of every pyramid level (`targets.Levels`
  order), when detection is on;
- `mask_logits` (B, H, W, mask classes) at input resolution, when segmentation is on.

`detector(model, config)` wraps it with the decoding (scores sqrt(class * centerness),
boxes from the distances, class-wise NMS in the graph) into `boxes` (B, max_det, 4)
xyxy input pixels, `scores`, `classes`, `num_detections` and the argmax `mask` (uint8).

The zoo's `trunk_with_heads` is not used: its heads read one trunk output, and these
read several pyramid levels (and the stride-4 map) and give three detection outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from shared.blocks import ConvNormAct, FeaturePyramid
from shared.errors import UserError
from shared.zoo.registry import register_model
from shared.zoo.resnet import STAGE_BLOCKS, resnet_backbone

# FCOS's ranges are 64 px per stride-8 level, doubling per level: hi = 8 * stride.
RANGE_PER_STRIDE = 8


@dataclass(frozen=True)
class Levels:
    """The pyramid levels of a model input: strides, map sizes and size ranges."""

    image_size: tuple[int, int]  # (height, width) of the model input
    strides: tuple[int, ...]  # finest first, e.g. (8, 16, 32)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(height, width) of each level's map ("same" padding rounds up)."""
        h, w = self.image_size
        return [(-(-h // s), -(-w // s)) for s in self.strides]

    @property
    def size_ranges(self) -> list[tuple[float, float]]:
        """[lo, hi) of max(l, t, r, b) per level; the first starts at 0, the last is open."""
        his = [RANGE_PER_STRIDE * s for s in self.strides[:-1]] + [np.inf]
        los = [0.0] + his[:-1]
        return list(zip(los, his, strict=True))

    @property
    def num_locations(self) -> int:
        return sum(h * w for h, w in self.shapes)

    def locations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centres (N, 2) as (x, y) pixels, stride (N,), and size range (N, 2)."""
        centres, strides, ranges = [], [], []
        for (h, w), s, rng in zip(self.shapes, self.strides, self.size_ranges, strict=True):
            ys, xs = np.meshgrid((np.arange(h) + 0.5) * s, (np.arange(w) + 0.5) * s, indexing="ij")
            centres.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
            strides.append(np.full(h * w, s, np.float32))
            ranges.append(np.tile(np.asarray(rng, np.float32), (h * w, 1)))
        return (
            np.concatenate(centres).astype(np.float32),
            np.concatenate(strides),
            np.concatenate(ranges),
        )


DETECTION_OUTPUTS = ("class_logits", "box_ltrb", "centerness_logits")
MASK_OUTPUT = "mask_logits"
# FCOS's prior on the classifier bias: every location starts at 1% "object", so the
# focal loss of the ~1000 background locations does not swamp the first steps.
PRIOR_PROBABILITY = 0.01
# Stride of the ResNet stages' outputs (stage 1..4) with the ImageNet stem.
STAGE_STRIDES = (4, 8, 16, 32)


@dataclass(frozen=True)
class PerceptionConfig:
    """Everything that shapes the network, its losses and its decoding."""

    image_size: tuple[int, int] = (160, 320)  # (height, width), multiples of 32
    num_classes: int = 1
    num_mask_classes: int = 3  # background, road, lane marking
    detection: bool = True
    segmentation: bool = True
    depth: int = 18
    width: int = 32  # ResNet first-stage filters (64 is the paper's)
    fpn_channels: int = 64
    head_convs: int = 2  # FCOS uses 4; 2 keeps CPU training affordable
    seg_channels: int = 32
    strides: tuple[int, ...] = (8, 16, 32)  # FPN levels the detector uses
    detection_weight: float = 1.0
    segmentation_weight: float = 1.0
    dice_weight: float = 1.0
    score_threshold: float = 0.05
    iou_threshold: float = 0.6
    max_detections: int = 100
    pre_nms_top_k: int = 1000

    def __post_init__(self) -> None:
        if not (self.detection or self.segmentation):
            raise UserError("the perception model needs detection, segmentation or both")
        h, w = self.image_size
        if h % 32 or w % 32 or h < 32 or w < 32:
            raise UserError(f"image_size must be multiples of 32, got {h}x{w}")
        if not set(self.strides) <= {8, 16, 32} or list(self.strides) != sorted(self.strides):
            raise UserError(f"strides must be increasing, from 8, 16, 32; got {self.strides}")

    @property
    def levels(self) -> Levels:
        return Levels(tuple(self.image_size), tuple(self.strides))


@keras.saving.register_keras_serializable(package="deepfield")
class LevelDistances(keras.layers.Layer):
    """Raw box-head output -> positive distances in pixels: exp(x) * stride (FCOS),
    the exponent clipped so an early wild step cannot overflow."""

    def __init__(self, stride: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, x):
        return ops.exp(ops.clip(x, -8.0, 8.0)) * float(self.stride)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stride": self.stride}


def _conv_gn_relu(filters: int, name: str) -> list[keras.layers.Layer]:
    # GroupNorm, not BatchNorm: the head is shared across levels whose statistics differ.
    return [
        keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal", name=name),
        keras.layers.GroupNormalization(groups=8, name=f"{name}_gn"),
        keras.layers.ReLU(name=f"{name}_relu"),
    ]


def _apply(layers: list[keras.layers.Layer], x):
    for layer in layers:
        x = layer(x)
    return x


def _detection_head(config: PerceptionConfig, pyramid: dict[int, Any]) -> dict[str, Any]:
    """FCOS head shared over the levels: a class tower and a box tower (whose end also
    predicts centerness, FCOS v2), outputs flattened and concatenated over levels."""
    # === Layers ===
    ch = config.fpn_channels
    class_tower = [
        layer for i in range(config.head_convs) for layer in _conv_gn_relu(ch, f"class_tower{i}")
    ]
    box_tower = [
        layer for i in range(config.head_convs) for layer in _conv_gn_relu(ch, f"box_tower{i}")
    ]
    prior = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
    class_out = keras.layers.Conv2D(
        config.num_classes,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        bias_initializer=keras.initializers.Constant(prior),
        name="class_out",
    )
    box_out = keras.layers.Conv2D(
        4,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        name="box_out",
    )
    centerness_out = keras.layers.Conv2D(
        1,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        name="centerness_out",
    )

    # === Functional Model ===
    outputs: dict[str, list] = {name: [] for name in DETECTION_OUTPUTS}
    for stride in config.strides:
        feature = pyramid[stride]
        c = _apply(class_tower, feature)
        b = _apply(box_tower, feature)
        distances = LevelDistances(stride, name=f"distances_s{stride}")(box_out(b))
        for name, value, depth in (
            ("class_logits", class_out(c), config.num_classes),
            ("box_ltrb", distances, 4),
            ("centerness_logits", centerness_out(b), 1),
        ):
            outputs[name].append(keras.layers.Reshape((-1, depth), name=f"{name}_s{stride}")(value))
    return {
        name: keras.layers.Concatenate(axis=1, name=name)(values)
        if len(values) > 1
        else keras.layers.Identity(name=name)(values[0])
        for name, values in outputs.items()
    }


def _segmentation_head(config: PerceptionConfig, p3, c2):
    """P3 (stride 8) upsampled 2x and fused with the stride-4 backbone map (thin lane
    markings need the finer one), then class logits upsampled 4x to the input."""
    ch = config.seg_channels
    x = ConvNormAct(ch, 3, name="seg_p3")(p3)
    x = keras.layers.UpSampling2D(2, name="seg_up2")(x)
    x = keras.layers.Add(name="seg_fuse")([x, ConvNormAct(ch, 1, name="seg_c2")(c2)])
    x = ConvNormAct(ch, 3, name="seg_conv")(x)
    x = keras.layers.Conv2D(config.num_mask_classes, 1, name="seg_logits")(x)
    x = keras.layers.UpSampling2D(4, interpolation="bilinear", name="seg_up4")(x)
    return keras.layers.Identity(name=MASK_OUTPUT, dtype="float32")(x)


def perception_model(config: PerceptionConfig) -> keras.Model:
    """The training network (see the module docstring for its outputs)."""
    h, w = config.image_size
    # === Layers ===
    backbone = resnet_backbone((h, w, 3), depth=config.depth, width=config.width, stem="imagenet")
    blocks = STAGE_BLOCKS[config.depth]
    stage_maps = [
        backbone.get_layer(f"stage{stage}_block{blocks[stage - 1]}").output
        for stage in (1, 2, 3, 4)
    ]
    trunk = keras.Model(backbone.inputs, stage_maps, name="resnet_stages")
    # The pyramid always starts at stride 8 (the segmentation head reads P3).
    pyramid_strides = tuple(s for s in (8, 16, 32) if s <= max(config.strides))

    # === Functional Model ===
    image = keras.Input((h, w, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(image)
    maps = dict(zip(STAGE_STRIDES, trunk(x), strict=True))
    pyramid = FeaturePyramid(config.fpn_channels, name="fpn")([maps[s] for s in pyramid_strides])
    pyramid = dict(zip(pyramid_strides, pyramid, strict=True))
    outputs: dict[str, Any] = {}
    if config.detection:
        outputs.update(_detection_head(config, pyramid))
    if config.segmentation:
        outputs[MASK_OUTPUT] = _segmentation_head(config, pyramid[8], maps[4])
    return keras.Model(image, outputs, name="perception")


def dense_scores_and_boxes(class_logits, box_ltrb, centerness_logits, centres, image_size):
    """Every location's class scores sqrt(sigmoid(class) * sigmoid(centerness)) (FCOS's
    test-time ranking) and its box (x1, y1, x2, y2): the location -+ its distances,
    clipped to the input. Keras ops, so the in-graph decoding (`FCOSDecode`) and the
    TFLite network (`domains.driving.serving_tflite`) share it."""
    scores = ops.sqrt(ops.sigmoid(class_logits) * ops.sigmoid(centerness_logits))
    centres = ops.cast(ops.convert_to_tensor(centres), box_ltrb.dtype)
    h, w = float(image_size[0]), float(image_size[1])
    x1 = ops.clip(centres[:, 0] - box_ltrb[..., 0], 0.0, w)
    y1 = ops.clip(centres[:, 1] - box_ltrb[..., 1], 0.0, h)
    x2 = ops.clip(centres[:, 0] + box_ltrb[..., 2], 0.0, w)
    y2 = ops.clip(centres[:, 1] + box_ltrb[..., 3], 0.0, h)
    return scores, (x1, y1, x2, y2)


@keras.saving.register_keras_serializable(package="deepfield")
class FCOSDecode(keras.layers.Layer):
    """Head outputs -> final detections, inside the graph.

    score = sqrt(sigmoid(class) * sigmoid(centerness)) (FCOS's test-time ranking);
    boxes = location -+ distances, clipped to the input; the `pre_nms_top_k` best
    locations per image go to `tf.image.combined_non_max_suppression` (per-class NMS,
    then the best `max_detections` over classes, zero-padded). Keras has no NMS op, so
    this layer is TensorFlow-only, like the rest of the serving graph.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        strides: tuple[int, ...],
        max_detections: int = 100,
        score_threshold: float = 0.05,
        iou_threshold: float = 0.6,
        pre_nms_top_k: int = 1000,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.image_size = tuple(int(v) for v in image_size)
        self.strides = tuple(int(s) for s in strides)
        self.max_detections = int(max_detections)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.pre_nms_top_k = int(pre_nms_top_k)
        centres, _, _ = Levels(self.image_size, self.strides).locations()
        self._centres = centres  # (N, 2) x, y

    def call(self, class_logits, box_ltrb, centerness_logits):
        scores, (x1, y1, x2, y2) = dense_scores_and_boxes(
            class_logits, box_ltrb, centerness_logits, self._centres, self.image_size
        )
        # combined_non_max_suppression wants (y1, x1, y2, x2).
        yxyx = tf.stack([y1, x1, y2, x2], axis=-1)
        num = self._centres.shape[0]
        k = min(self.pre_nms_top_k, num)
        if k < num:
            _, top = tf.math.top_k(tf.reduce_max(scores, axis=-1), k=k)
            scores = tf.gather(scores, top, batch_dims=1)
            yxyx = tf.gather(yxyx, top, batch_dims=1)
        boxes, out_scores, classes, valid = tf.image.combined_non_max_suppression(
            yxyx[:, :, None, :],
            scores,
            max_output_size_per_class=self.max_detections,
            max_total_size=self.max_detections,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            clip_boxes=False,
        )
        xyxy = tf.stack([boxes[..., 1], boxes[..., 0], boxes[..., 3], boxes[..., 2]], axis=-1)
        return {
            "boxes": xyxy,
            "scores": out_scores,
            "classes": tf.cast(classes, tf.int32),
            "num_detections": tf.cast(valid, tf.int32),
        }

    def compute_output_spec(self, class_logits, box_ltrb, centerness_logits):
        batch, m = class_logits.shape[0], self.max_detections
        return {
            "boxes": keras.KerasTensor((batch, m, 4), "float32"),
            "scores": keras.KerasTensor((batch, m), "float32"),
            "classes": keras.KerasTensor((batch, m), "int32"),
            "num_detections": keras.KerasTensor((batch,), "int32"),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "strides": self.strides,
            "max_detections": self.max_detections,
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "pre_nms_top_k": self.pre_nms_top_k,
        }


@keras.saving.register_keras_serializable(package="deepfield")
class MaskArgmax(keras.layers.Layer):
    """Mask logits -> class ids per pixel, uint8."""

    def call(self, logits):
        return ops.cast(ops.argmax(logits, axis=-1), "uint8")

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits.shape[:-1], "uint8")


def detector(model: keras.Model, config: PerceptionConfig) -> keras.Model:
    """The inference model: image (0-255 floats at `config.image_size`) -> decoded
    detections and/or mask (see the module docstring)."""
    h, w = config.image_size
    image = keras.Input((h, w, 3), name="image")
    raw = model(image, training=False)
    outputs: dict[str, Any] = {}
    if config.detection:
        outputs.update(
            FCOSDecode(
                config.image_size,
                config.strides,
                max_detections=config.max_detections,
                score_threshold=config.score_threshold,
                iou_threshold=config.iou_threshold,
                pre_nms_top_k=config.pre_nms_top_k,
                name="decode",
            )(raw["class_logits"], raw["box_ltrb"], raw["centerness_logits"])
        )
    if config.segmentation:
        outputs["mask"] = MaskArgmax(name="mask")(raw[MASK_OUTPUT])
    return keras.Model(image, outputs, name="perception_detector")


@register_model(
    "fcos",
    kind="detector",
    modality="image",
    preset_input=(160, 320, 3),
    preset_classes=3,
)
def fcos(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    depth: int = 18,
    width: int = 32,
    fpn_channels: int = 64,
    head_convs: int = 2,
    seg_channels: int = 32,
    mask_classes: int = 3,
    detection: bool = True,
    segmentation: bool = True,
    strides: tuple[int, ...] = (8, 16, 32),
) -> keras.Model:
    """The perception network by name: FCOS detection of `num_classes` object classes
    and/or segmentation into `mask_classes` (height and width multiples of 32)."""
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise UserError(f"fcos takes RGB images (height, width, 3); got {tuple(input_shape)}")
    return perception_model(
        PerceptionConfig(
            image_size=(int(input_shape[0]), int(input_shape[1])),
            num_classes=int(num_classes or 1),
            num_mask_classes=mask_classes,
            detection=detection,
            segmentation=segmentation,
            depth=depth,
            width=width,
            fpn_channels=fpn_channels,
            head_convs=head_convs,
            seg_channels=seg_channels,
            strides=tuple(strides),
        )
    )
