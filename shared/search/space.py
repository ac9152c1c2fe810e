"""A search space over config keys: read from YAML, checked against a config schema.

```yaml
train.learning_rate: {type: float, min: 1e-4, max: 1e-2, sampling: log}
model.depth: {type: choice, values: [18, 34]}
train.batch_size: {type: int, min: 16, max: 128, step: 16}
data.augment.flip: {type: bool}
```

Everything here is checked before TensorFlow loads: a key the schema does not have is
an error naming the close valid keys, and every range is tried on the base config (its
ends, every choice), so a value the schema refuses is an error before a trial trains.
KerasTuner is imported only by `to_hyperparameters`.
"""

from __future__ import annotations

import difflib
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel

from shared.config import read_yaml, set_key, to_plain, valid_keys, validate
from shared.errors import UserError

TYPES = ("float", "int", "choice", "bool")
SAMPLINGS = ("linear", "log", "reverse_log")
FIELDS = {
    "float": {"type", "min", "max", "sampling", "step"},
    "int": {"type", "min", "max", "sampling", "step"},
    "choice": {"type", "values"},
    "bool": {"type"},
}


@dataclass(frozen=True)
class Param:
    """One searched config key. A choice among lists or mappings (`filters: [[8, 16],
    [16, 32]]`) is offered to KerasTuner as their YAML text (`encoded`), since its
    choices hold scalars only."""

    key: str
    type: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    sampling: str = "linear"
    values: tuple[Any, ...] = ()
    encoded: bool = False

    def describe(self) -> str:
        if self.type == "choice":
            return "{" + ", ".join(_show(v) for v in self.values) + "}"
        if self.type == "bool":
            return "{false, true}"
        text = f"[{_show(self.min)}, {_show(self.max)}]"
        if self.step:
            text += f" step {_show(self.step)}"
        return text + (f" {self.sampling}" if self.sampling != "linear" else "")

    def spec(self) -> dict[str, Any]:
        """The space-file entry that reads back as this Param (`parse_param`)."""
        if self.type == "choice":
            return {"type": "choice", "values": [self.decode(v) for v in self.values]}
        if self.type == "bool":
            return {"type": "bool"}
        entry: dict[str, Any] = {"type": self.type, "min": self.min, "max": self.max}
        if self.step:
            entry["step"] = self.step
        if self.sampling != "linear":
            entry["sampling"] = self.sampling
        return entry

    def decode(self, value: Any) -> Any:
        """The config value of a KerasTuner value."""
        if self.encoded:
            return yaml.safe_load(value)
        # KerasTuner's Bayesian oracle hands out numpy scalars (np.float64), which the
        # config's YAML round trip (yaml.safe_dump) refuses.
        return value.item() if isinstance(value, np.generic) else value

    def corners(self) -> list[Any]:
        """The values that show whether the schema accepts the whole range."""
        if self.type == "choice":
            return list(self.values)
        if self.type == "bool":
            return [False, True]
        return [self.min, self.max]


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


class Space:
    """An ordered set of `Param`s over one domain's config keys."""

    def __init__(self, params: list[Param], source: str = "space"):
        self.params = params
        self.source = source

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, key: str) -> Param:
        return next(p for p in self.params if p.key == key)

    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def describe(self) -> list[tuple[str, str, str]]:
        """(key, type, range) rows for printing."""
        return [(p.key, p.type, p.describe()) for p in self.params]

    def to_yaml(self) -> str:
        """The space as a space file (`read_space` reads it back as the same space)."""
        return yaml.safe_dump({p.key: p.spec() for p in self.params}, sort_keys=False)

    def to_hyperparameters(self):
        """The space as `keras_tuner.HyperParameters` (imports KerasTuner)."""
        import keras_tuner

        hp = keras_tuner.HyperParameters()
        for p in self.params:
            if p.type == "choice":
                hp.Choice(p.key, list(p.values), ordered=False)
            elif p.type == "bool":
                hp.Boolean(p.key)
            elif p.type == "int":
                hp.Int(
                    p.key, int(p.min), int(p.max), step=p.step and int(p.step), sampling=p.sampling
                )
            else:
                hp.Float(p.key, p.min, p.max, step=p.step, sampling=p.sampling)
        return hp

    def config_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """KerasTuner's values of a trial as config values (its own `tuner/` keys left out)."""
        params = {p.key: p for p in self.params}
        return {k: params[k].decode(v) for k, v in values.items() if k in params}


# === Reading and checking ===
def read_space(path: str | Path, schema: type[BaseModel], base: BaseModel) -> Space:
    """The space in YAML file `path`, checked against `schema` on the `base` config."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--space {path} does not exist")
    data = read_yaml(path)
    if not data:
        raise UserError(f"--space {path} names no keys")
    for key in data:
        check_key(str(key), schema, path.name)
    params = [parse_param(str(key), spec, path.name) for key, spec in data.items()]
    space = Space(params, source=path.name)
    check_space(space, schema, base)
    return space


def parse_param(key: str, spec: Any, source: str = "space") -> Param:
    """One entry of a space file, with its own consistency checked (no schema yet)."""
    where = f"{key} in {source}"
    if not isinstance(spec, dict) or "type" not in spec:
        raise UserError(f"{where}: expected a mapping with a type ({', '.join(TYPES)})")
    kind = spec["type"]
    if kind not in TYPES:
        raise UserError(f"{where}: unknown type {kind!r}; types: {', '.join(TYPES)}")
    extra = sorted(set(spec) - FIELDS[kind])
    if extra:
        raise UserError(
            f"{where}: a {kind} takes {', '.join(sorted(FIELDS[kind]))}, not {', '.join(extra)}"
        )
    if kind == "bool":
        return Param(key, "bool")
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}: a choice needs a non-empty list of values")
        if len({yaml.safe_dump(v) for v in values}) != len(values):
            raise UserError(f"{where}: the choice lists a value twice")
        scalar = all(isinstance(v, str | int | float | bool) for v in values)
        same = len({type(v) for v in values}) == 1
        if scalar and same:
            return Param(key, "choice", values=tuple(values))
        # Mixed types or lists: KerasTuner gets each value as its YAML text.
        text = [yaml.safe_dump(v, default_flow_style=True).strip() for v in values]
        text = [t.removesuffix("...").strip() for t in text]
        return Param(key, "choice", values=tuple(text), encoded=True)
    low, high = _number(spec.get("min")), _number(spec.get("max"))
    for name, value in (("min", low), ("max", high)):
        if not _is_number(value):
            raise UserError(f"{where}: {name} must be a number (got {value!r})")
    low, high = float(low), float(high)
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise UserError(f"{where}: an int range needs whole min and max (got {low}, {high})")
    if not low < high:
        raise UserError(
            f"{where}: impossible range, min {_show(low)} is not below max {_show(high)}"
        )
    sampling = spec.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise UserError(f"{where}: sampling must be one of {', '.join(SAMPLINGS)}")
    if sampling != "linear" and low <= 0:
        raise UserError(f"{where}: {sampling} sampling needs min > 0 (got {_show(low)})")
    step = _number(spec.get("step"))
    if step is not None:
        if not _is_number(step) or step <= 0:
            raise UserError(f"{where}: step must be a positive number (got {step!r})")
        if sampling == "linear" and step > high - low:
            raise UserError(f"{where}: step {_show(step)} is wider than the range")
        if kind == "int" and not float(step).is_integer():
            raise UserError(f"{where}: an int step must be whole (got {step})")
    if kind == "int":
        return Param(key, "int", int(low), int(high), step and int(step), sampling)
    return Param(key, "float", low, high, step and float(step), sampling)


def _number(value: Any) -> Any:
    """YAML 1.1 reads `1e-4` as text; a space file means the number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_space(space: Space, schema: type[BaseModel], base: BaseModel) -> None:
    """Every key exists in `schema`, and the base config with each key at each end of
    its range (or each choice) still validates: a UserError naming the first problem."""
    plain = to_plain(base)
    for param in space:
        check_key(param.key, schema, space.source)
        for value in param.corners():
            trial = set_key(plain, param.key, param.decode(value))
            validate(schema, trial, source=f"{space.source} ({param.key}={_show(value)})")


def check_key(key: str, schema: type[BaseModel], source: str = "space") -> None:
    """`key` is a config key of `schema`, or sits in a section that takes free keys (a
    zoo model's options, an augmentation mapping); else a UserError with close keys."""
    section: Any = schema
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(section, type) and issubclass(section, BaseModel):
            field = section.model_fields.get(part)
            if field is None:
                if section.model_config.get("extra") == "allow":
                    return  # checked where the section's options are known (the zoo)
                break
            section = field.annotation
            if last:
                if isinstance(section, type) and issubclass(section, BaseModel):
                    raise UserError(
                        f"{key} in {source} is a config section, not a key; its keys: "
                        f"{', '.join(valid_keys(section, key + '.'))}"
                    )
                return
        elif typing.get_origin(section) is dict or section is dict:
            return  # a free mapping (data.augment.<layer>): its values are validated
        else:
            break
    known = valid_keys(schema)
    close = difflib.get_close_matches(key, known, n=5, cutoff=0.5)
    prefix = key.split(".")[0] + "."
    hint = close or [k for k in known if k.startswith(prefix)][:12] or known[:12]
    raise UserError(f"unknown config key {key!r} in {source}; close valid keys: {', '.join(hint)}")
