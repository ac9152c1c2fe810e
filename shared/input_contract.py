"""A run's input contract (`inputs.json`): the raw inputs its model takes.

KerasHub's Preprocessor idea as a file: written once at train time, then read by
predict, explain, evaluate and export, so none of them guesses a shape, a class list or
a column set from somewhere else. Every domain writes the same keys:

    {"domain": "vision", "task": "classify",
     "inputs": [{"name": "image", "dtype": "uint8", "shape": [8, 8, 1], "description": ...}],
     "classes": ["0", ..., "9"],           # or null
     "details": {...}}                      # the domain's own facts (table schema, env spec)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.errors import UserError
from shared.run_dir import RunDir, write_json

FILE = "inputs.json"


@dataclass
class InputSpec:
    """One named raw input: its dtype and its shape without the batch axis."""

    name: str
    dtype: str
    shape: list[int | None]
    description: str = ""


@dataclass
class InputContract:
    domain: str
    task: str
    inputs: list[InputSpec]
    classes: list[str] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def write(self, run: RunDir) -> None:
        write_json(run.path / FILE, asdict(self))

    @classmethod
    def read(cls, run: RunDir) -> InputContract:
        path = run.path / FILE
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(
                f"{run.path} has no {FILE} (its input contract); it was trained by an older "
                "Deepfield: retrain it"
            ) from None
        record["inputs"] = [InputSpec(**item) for item in record["inputs"]]
        return cls(**record)

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)


def record_image_data(
    run: RunDir, data: Any, domain: str, task: str, description: str, **details: Any
) -> None:
    """data_splits.json and the input contract of an image classifier trained on `data`
    (a `shared.data.ImageData`): one uint8 image input of its shape, its classes."""
    info = dict(data.split_info)
    source, splits = info.pop("spec"), info.pop("splits")
    info.pop("image_shape", None), info.pop("class_names", None)  # in the contract
    run.write_splits(source, splits, **info)
    InputContract(
        domain,
        task,
        [InputSpec("image", "uint8", list(data.image_shape), description)],
        classes=list(data.class_names),
        details={"source": data.spec, **details},
    ).write(run)
