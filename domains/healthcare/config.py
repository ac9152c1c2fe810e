"""The healthcare config: every key a `healthcare` command accepts, with types and defaults.

`task: classify` trains a zoo CNN on 2D medical images (MedMNIST `.npz`, image folders,
the builtins) and calibrates it; its sections are `model`, `data`, `calibration`,
`threshold`, `train`, `runtime` and `explain`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from shared.config import ConfigModel
from shared.training import RuntimeConfig, TrainConfig

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
    window: str | tuple[float, float] = Field(
        "abdomen",
        description="CT inputs (DICOM with HU): a preset (lung, mediastinum, bone, liver, "
        "brain, abdomen) or [level, width] in HU, mapped to 0..255",
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


class ExplainConfig(ConfigModel):
    examples: int = Field(8, ge=1, le=64)


class HealthcareConfig(ConfigModel):
    task: Literal["classify"] = "classify"
    model: HealthcareModelConfig = HealthcareModelConfig()
    data: HealthcareDataConfig = HealthcareDataConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    threshold: ThresholdConfig = ThresholdConfig()
    train: TrainConfig = TrainConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    explain: ExplainConfig = ExplainConfig()


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
