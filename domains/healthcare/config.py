"""The healthcare config: every key a `healthcare` command accepts, with types and defaults.

`task: classify` trains a zoo CNN on 2D medical images (MedMNIST `.npz`, image folders,
`csv:` manifests, the builtins) and calibrates it; its sections are `model`, `data`,
`calibration`, `threshold`, `train`, `runtime` and `explain`. `task: segment` trains the
zoo's U-Net (2D slices or 3D patches; `model.name: auto` picks `unet` or `unet3d` by
`segment.dims`) on label maps and reads the `segment` section as well; the `data` keys
`spacing`, `normalize`, `on_nan`, `mask` and `modality` are segmentation's, and
`image_column`, `mask_column`, `label_column` and `patient_column` name a `csv:`
manifest's columns.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from shared.config import ConfigModel
from shared.training import RuntimeConfig
from shared.training.settings import StepCappedTrainConfig
from shared.training.transfer import TransferConfig

# CT windows (level, width) in Hounsfield units, as radiology viewers preset them.
HU_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "liver": (60.0, 160.0),
    "brain": (40.0, 80.0),
    "abdomen": (40.0, 400.0),
}


class HealthcareModelConfig(ConfigModel):
    """`model.name` picks a zoo image classifier; any other key is one of its options."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, protected_namespaces=())

    name: str = "resnet"

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class HealthcareDataConfig(ConfigModel):
    source: str = "builtin:breastmnist"
    image_size: tuple[int, int] | None = Field(None, description="resize to (height, width)")
    color_mode: Literal["auto", "grayscale", "rgb"] = "auto"
    validation_split: float = Field(
        0.1, gt=0, lt=1, description="share cut for validation when the source ships none"
    )
    test_split: float = Field(
        0.2, gt=0, lt=1, description="share cut for test when the source ships none"
    )
    on_corrupt: Literal["skip", "fail"] = "skip"
    class_names: list[str] | None = Field(
        None, description="names for the classes in label order (MedMNIST ships ids only)"
    )
    class_weight: Literal["none", "balanced", "sqrt"] = Field(
        "none",
        description="weight each training image's loss by its class; balanced: "
        "n / (classes * count), sqrt: its square root",
    )
    augment: dict[str, Any] = Field(
        default_factory=dict,
        description="Keras preprocessing layer name -> magnitude, e.g. {flip: horizontal, "
        "rotate: 0.05, contrast: 0.1}",
    )
    tta: Literal["auto", "none", "flip"] = Field(
        "auto",
        description="test-time augmentation of 2D classify: flip averages the model's "
        "probabilities over each image and its horizontal mirror (evaluation, predict and "
        "the export alike); auto: flip when training flips horizontally (data.augment.flip)",
    )
    window: str | tuple[float, float] = Field(
        "abdomen",
        description="CT inputs (DICOM with HU): a preset (lung, mediastinum, bone, liver, "
        "brain, abdomen) or [level, width] in HU, mapped to 0..255",
    )
    # === Segmentation (task: segment) ===
    spacing: list[float] | None = Field(
        None,
        description="segment: resample every case to this spacing in mm (one number per "
        "axis, or one for all) before training and inference; null keeps each case's own",
    )
    normalize: Literal["auto", "window", "zscore", "none"] = Field(
        "auto",
        description="segment: window (CT: clip to data.window, scale to 0..1), zscore "
        "(per volume: MR), auto (window for CT, zscore for every other modality), none",
    )
    on_nan: Literal["error", "zero", "mean"] = Field(
        "error", description="segment: NaN voxels refused (error) or replaced by 0 or the mean"
    )
    mask: str | None = Field(
        None,
        description="segment: the label map (NIfTI, NRRD or a DICOM series) of a single-image "
        "nifti:, nrrd: or dicom: source",
    )
    modality: str | None = Field(
        None,
        description="segment: the images' modality (CT, MR, ...) for data.normalize=auto where "
        "the files do not say; null: dataset.json (MSD), the DICOM Modality tag, else CT "
        "when the intensities look like HU (minimum at or below -500)",
    )
    # === csv: manifests (one row per image) ===
    image_column: str = Field(
        "image",
        description="csv: the column of image paths (relative ones resolve against the "
        "CSV's folder)",
    )
    mask_column: str = Field(
        "mask", description="csv, segment: the column of mask paths (NIfTI, NRRD, DICOM series)"
    )
    label_column: str = Field(
        "label", description="csv, classify: the column of labels (class names or integers)"
    )
    patient_column: str | None = Field(
        "patient_id",
        description="csv: the column of patient ids, so one patient's rows never straddle "
        "splits; a manifest without it (or null) splits row by row",
    )


class CalibrationConfig(ConfigModel):
    """Fitted on the validation split; the arg-max (and so accuracy) is unchanged by
    temperature scaling, while isotonic (binary only) remaps the positive probability."""

    method: Literal["temperature", "isotonic", "none"] = "temperature"
    bins: int = Field(10, ge=2, le=100, description="equal-width bins of ECE and the plot")


class ThresholdConfig(ConfigModel):
    """The operating point of a binary classifier, chosen on the validation split."""

    rule: Literal["youden", "sensitivity", "fixed"] = Field(
        "youden",
        description="youden: maximise sensitivity + specificity - 1; sensitivity: the "
        "highest threshold reaching target_sensitivity; fixed: value",
    )
    target_sensitivity: float = Field(0.9, gt=0, le=1)
    value: float = Field(0.5, gt=0, lt=1, description="the threshold of rule=fixed")
    positive_class: str | None = Field(
        None,
        description="the class whose probability is thresholded (default: the data's "
        "declared positive class, else the second class)",
    )


class SegmentConfig(ConfigModel):
    """The segmentation task: U-Net input, loss, sampling and sliding-window inference."""

    dims: Literal["auto", 2, 3] = Field(
        "auto",
        description="2: U-Net on 2D slices; 3: 3D U-Net on patches; auto: 2 for "
        "builtin:phantom, 3 for NIfTI volumes",
    )
    patch_size: list[int] | None = Field(
        None,
        description="training patch (and sliding window) in voxels; null: the phantom's "
        "image size, else the training cases' median size rounded up to a multiple of "
        "2^model.depth (at most 64 per axis in 3D, 256 in 2D)",
    )
    phantom_cases: int = Field(300, ge=3, description="builtin:phantom: cases generated")
    phantom_shape: list[int] | None = Field(
        None, description="builtin:phantom: image size (2D default [64, 64], 3D [64, 64, 32])"
    )
    dice_weight: float = Field(1.0, ge=0, description="weight of the soft Dice term")
    ce_weight: float = Field(1.0, ge=0, description="weight of the cross-entropy term")
    foreground_fraction: float = Field(
        0.33,
        ge=0,
        le=1,
        description="share of training patches centred on a foreground voxel of a class "
        "drawn uniformly among those present (nnU-Net's class-balanced oversampling)",
    )
    patches_per_case: int = Field(
        2, ge=1, description="3D: random patches drawn per training case per epoch"
    )
    flip: bool = Field(False, description="random flips of training patches along every axis")
    rotate: float = Field(
        0.0,
        ge=0,
        le=180,
        description="training: rotate a fifth of the patches (nnU-Net's share) in the plane "
        "of the first two axes (a canonical volume's axial plane) by a random angle up to "
        "this many degrees; image linear, labels nearest; 0: off",
    )
    intensity_jitter: float = Field(
        0.1, ge=0, le=1, description="training: random scale and shift of normalised intensity"
    )
    overlap: float = Field(0.5, ge=0, lt=1, description="sliding-window overlap")
    sigma_scale: float = Field(0.125, gt=0, description="Gaussian weight sigma / patch size")
    lesion_overlap: float = Field(
        0.1, ge=0, le=1, description="IoU that counts a true lesion as detected"
    )
    overlays: int = Field(6, ge=1, le=24, description="test cases in plots/overlays.png")


class ExplainConfig(ConfigModel):
    examples: int = Field(8, ge=1, le=64)


class HealthcareTrainConfig(StepCappedTrainConfig):
    """The shared `train` section with its step cap (`max_steps`: classify only)."""


class HealthcareConfig(ConfigModel):
    task: Literal["classify", "segment"] = "classify"
    model: HealthcareModelConfig = HealthcareModelConfig()
    data: HealthcareDataConfig = HealthcareDataConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    threshold: ThresholdConfig = ThresholdConfig()
    train: HealthcareTrainConfig = HealthcareTrainConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    explain: ExplainConfig = ExplainConfig()
    segment: SegmentConfig = SegmentConfig()
    transfer: TransferConfig = Field(
        TransferConfig(),
        description="classify: `--init-from RUN` starts from a finished classify run's "
        "backbone (same model.name and options): head_epochs on the frozen backbone, then "
        "train.epochs of fine-tuning at fine_tune_learning_rate",
    )


def window_range(window: str | tuple[float, float] | list[float]) -> tuple[float, float]:
    """(low, high) HU of a window preset or [level, width]."""
    from shared.errors import UserError

    if isinstance(window, str):
        if window not in HU_WINDOWS:
            raise UserError(
                f"unknown data.window {window!r}; presets: {', '.join(HU_WINDOWS)} "
                "(or [level, width] in HU)"
            )
        level, width = HU_WINDOWS[window]
    else:
        level, width = (float(v) for v in window)
        if width <= 0:
            raise UserError(f"data.window width must be positive; got {width:g}")
    return level - width / 2, level + width / 2
