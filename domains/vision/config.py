"""The vision config: every key a `vision` command accepts, with types and defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from shared.config import ConfigModel
from shared.training import RuntimeConfig, TrainConfig
from shared.training.transfer import TransferConfig


class VisionModelConfig(ConfigModel):
    """`model.name` picks a zoo classifier; any other key is one of its options.

    The options differ per architecture, so the zoo validates them when it builds the
    model (an unknown option is an error that lists the valid ones).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True, protected_namespaces=())

    name: str = "small_cnn"

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class VisionDataConfig(ConfigModel):
    source: str = "builtin:digits"
    image_size: tuple[int, int] | None = Field(None, description="resize to (height, width)")
    color_mode: Literal["auto", "grayscale", "rgb"] = "auto"
    validation_split: float = Field(0.1, ge=0, lt=1)
    test_split: float = Field(0.2, ge=0, lt=1)
    on_corrupt: Literal["skip", "fail"] = "skip"
    augment: dict[str, float] = Field(
        default_factory=dict, description="layer name -> magnitude, e.g. {translate: 0.1}"
    )


class ExplainConfig(ConfigModel):
    examples: int = Field(16, ge=1, le=256)


class GenerateConfig(ConfigModel):
    """`--task generate`: sample grids and the Frechet distance of a trained generator.

    The distance is computed on the penultimate features of a small CNN classifier
    trained on the same data (`frechet_classifier_distance`), not on Inception-v3's
    (the FID), since Inception weights cannot be fetched offline.
    """

    samples: int = Field(64, ge=1, le=1024, description="images in the sample grid")
    fcd_examples: int = Field(500, ge=10, description="real and generated images compared")
    classifier_epochs: int = Field(5, ge=1, description="epochs of the feature classifier")


class VisionConfig(ConfigModel):
    task: Literal["classify", "generate"] = "classify"
    model: VisionModelConfig = VisionModelConfig()
    data: VisionDataConfig = VisionDataConfig()
    train: TrainConfig = TrainConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    transfer: TransferConfig = TransferConfig()
    explain: ExplainConfig = ExplainConfig()
    generate: GenerateConfig = GenerateConfig()


def model_fits(task: str, kind: str, modalities: tuple[str, ...]) -> bool:
    """Whether a zoo model of `kind` taking `modalities` trains on images for `task`:
    classify takes any classifier of images (CNNs, image rows through an RNN or BERT),
    generate the generative models of images."""
    if "image" not in modalities:
        return False
    return kind == "generative" if task == "generate" else kind.endswith("classifier")
