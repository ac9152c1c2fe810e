"""Vision data: which specs the domain takes and loading them (user image files are
decoded by `shared.data.image_files`)."""

from __future__ import annotations

from domains.vision.config import VisionDataConfig
from shared.data import ImageData, load_configured, parse_spec
from shared.input_contract import InputContract, record_image_data
from shared.run_dir import RunDir

ACCEPTED_SPECS = ("builtin", "folder", "idx", "npz", "tfds")


def load(data: VisionDataConfig, seed: int) -> ImageData:
    """Load the configured source with the configured, seeded splits."""
    parse_spec(data.source, accepted=ACCEPTED_SPECS)
    return load_configured(data, seed)


def record_data(run: RunDir, data: ImageData, task: str) -> None:
    """The run's data_splits.json and its input contract (image shape, classes)."""
    record_image_data(
        run,
        data,
        "vision",
        task,
        "pixels 0..255; image files are decoded, converted and resized to this",
    )


def run_inputs(run: RunDir) -> tuple[tuple[int, int, int], list[str]]:
    """(image shape, class names) of a trained run, from its input contract."""
    contract = InputContract.read(run)
    return tuple(contract.input("image").shape), list(contract.classes or [])
