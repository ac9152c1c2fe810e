"""The driving config: every key a `driving` command accepts, with types and defaults.

One task, `perception`: the zoo's `fcos` network (ResNet + FPN trunk) with a detection
head and a road / lane-marking segmentation head, trained jointly. `model.detection`
and `model.segmentation` switch the heads (segmentation `auto`: on when the data has
masks), so either single-task model is one `--set` away and the multi-task gain is
measured. `data.image_size: auto` picks the model input from the training frames'
median aspect ratio, its longer side at most `data.max_side` (KITTI's 1242x375 frames
train at 192x640, the simulator's 320x160 at 160x320).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from domains.driving.kitti import DEFAULT_CLASS_MAP
from shared.config import ConfigModel
from shared.errors import UserError
from shared.training import RuntimeConfig
from shared.training.settings import StepCappedTrainConfig


class DrivingModelConfig(ConfigModel):
    """The perception network (`shared.zoo.fcos`) and its decoding."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    name: Literal["fcos"] = "fcos"
    depth: Literal[10, 18, 34] = Field(18, description="ResNet depth of the shared trunk")
    width: int = Field(32, ge=8, le=128, description="first-stage filters (64 is the paper's)")
    fpn_channels: int = Field(64, ge=8, le=256)
    head_convs: int = Field(2, ge=1, le=4, description="convolutions per FCOS tower (paper: 4)")
    seg_channels: int = Field(32, ge=8, le=256)
    strides: tuple[int, ...] = Field((8, 16, 32), description="FPN levels the detector reads")
    detection: bool = Field(True, description="the detection head")
    segmentation: Literal["auto", "on", "off"] = Field(
        "auto", description="the road / lane head; auto: on when the data has masks"
    )
    detection_weight: float = Field(1.0, gt=0, description="loss weight of the detection head")
    segmentation_weight: float = Field(1.0, gt=0, description="loss weight of the mask head")
    dice_weight: float = Field(1.0, ge=0, description="Dice term beside cross-entropy")
    score_threshold: float = Field(0.05, ge=0, lt=1, description="lowest detection score kept")
    iou_threshold: float = Field(0.6, gt=0, le=1, description="non-maximum suppression IoU")
    max_detections: int = Field(100, ge=1, le=1000, description="detections per image (padded)")
    pre_nms_top_k: int = Field(1000, ge=1, description="locations that enter NMS")

    @field_validator("segmentation", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML reads a bare on / off (and true / false) as booleans.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class DrivingDataConfig(ConfigModel):
    source: str = "builtin:highway"
    image_size: Literal["auto"] | tuple[int, int] = Field(
        "auto",
        description="model input (height, width), multiples of 32, frames letterboxed into "
        "it; auto: the training frames' median aspect, longer side <= max_side",
    )
    max_side: int = Field(640, ge=64, le=2048, description="image_size auto: longest side")
    validation_split: float = Field(
        0.1, gt=0, lt=1, description="share cut for validation when the source ships none"
    )
    test_split: float = Field(
        0.2, gt=0, lt=1, description="share cut for test when the source ships none"
    )
    on_corrupt: Literal["skip", "fail"] = "skip"
    class_map: dict[str, str | None] = Field(
        default_factory=lambda: dict(DEFAULT_CLASS_MAP),
        description="kitti: KITTI type -> trained class; 'ignore': a region neither "
        "rewarded nor penalised (DontCare, Tram, Misc by default); null: dropped",
    )
    frames: int = Field(
        240, ge=10, le=20000, description="builtin:highway: frames to simulate (80/10/10 split)"
    )
    simulate_seed: int = Field(7, ge=0, description="builtin:highway: the simulator's seed")
    flip: float = Field(0.5, ge=0, le=1, description="training: horizontal flip probability")
    scale: float = Field(0.25, ge=0, lt=1, description="training: zoom in [1-s, 1+s], crop/pad")
    color: float = Field(0.15, ge=0, le=1, description="training: brightness and channel gain")

    @field_validator("image_size")
    @classmethod
    def _multiples_of_32(cls, value: Any) -> Any:
        if value != "auto":
            h, w = value
            if h % 32 or w % 32 or min(h, w) < 32:
                raise ValueError(f"image_size must be multiples of 32 (>= 32), got {h}x{w}")
        return value


class ExplainConfig(ConfigModel):
    examples: int = Field(4, ge=1, le=16, description="frames in explain's and the plots' grids")


class DrivingConfig(ConfigModel):
    task: Literal["perception"] = "perception"
    model: DrivingModelConfig = DrivingModelConfig()
    data: DrivingDataConfig = DrivingDataConfig()
    train: StepCappedTrainConfig = StepCappedTrainConfig(
        epochs=100,
        max_steps=800,
        batch_size=8,
        learning_rate=2e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        lr_schedule="cosine",
        warmup_epochs=1,
    )
    runtime: RuntimeConfig = RuntimeConfig()
    explain: ExplainConfig = ExplainConfig()


def auto_image_size(sizes: list[tuple[int, int]], max_side: int) -> tuple[int, int]:
    """(height, width), multiples of 32, for frames of `sizes` (height, width): their
    median aspect ratio, the longer side the frames' median longer side but at most
    `max_side` (never upscaled past the data)."""
    if not sizes:
        raise UserError("no training frames to size the model input from")
    heights = sorted(h for h, _ in sizes)
    widths = sorted(w for _, w in sizes)
    h, w = heights[len(heights) // 2], widths[len(widths) // 2]
    longest = min(max_side, max(h, w))

    def snap(value: float) -> int:
        return max(64, int(round(value / 32)) * 32)

    if w >= h:
        return snap(longest * h / w), snap(longest)
    return snap(longest), snap(longest * w / h)


def segmentation_on(config: DrivingConfig, has_masks: bool) -> bool:
    """Whether the run trains the mask head: `on` needs masks, `auto` follows the data."""
    choice = config.model.segmentation
    if choice == "on" and not has_masks:
        raise UserError(
            "model.segmentation is on, but the data has no masks/ folder; use "
            "--set model.segmentation=auto (or off) to train detection only"
        )
    return choice == "on" or (choice == "auto" and has_masks)
