"""The space `tune` searches when no `--space` file is given: modest on purpose.

- the learning rate (`train.learning_rate`, or the RL agent's `agent.<name>.learning_rate`):
  a log range from a tenth to ten times the config's value;
- the model's options (`model.*`: a zoo model's keyword options, or the fields of a
  domain's own model section), where a default says what to try:
  - an int the schema limits to a few values (driving's `model.depth: 10|18|34`): those;
  - `dropout`: 0 to 0.5;
  - widths (`width`, `units`, `embedding_dim`, `*_channels`): half, the default, double;
  - widths per layer (`filters`, `hidden`: a list of ints): all halved, as is, doubled;
  - depths (`depth`, `num_layers`): up to two values nearest the default that the model
    accepts (a ResNet takes 10/18/34/50..., so 18 offers 10 and 34).

Everything else (kernel sizes, strides, vocabularies, flags, modes) keeps the config's
value: a wider space needs a `--space` file.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from shared.config import get_key
from shared.search.space import Param, Space

WIDTHS = ("width", "units", "embedding_dim")
LAYER_WIDTHS = ("filters", "hidden")
DEPTHS = ("depth", "num_layers")
MAX_DROPOUT = 0.5


def learning_rate_key(plain: dict[str, Any]) -> str | None:
    """Where this config keeps its learning rate (None: it has none)."""
    agent = plain.get("agent") if isinstance(plain.get("agent"), dict) else None
    candidates = ["train.learning_rate"]
    if agent and agent.get("name"):
        candidates.append(f"agent.{agent['name']}.learning_rate")
    return next((k for k in candidates if _is_number(get_key(plain, k))), None)


def default_space(
    plain: dict[str, Any],
    schema: type[BaseModel],
    model_options: dict[str, Any] | None = None,
    accepts: Callable[[str, Any], bool] = lambda option, value: True,
) -> Space:
    """The default space of a config (`plain`, as config.yaml holds it).

    `model_options` are the zoo model's options with the config's values applied (None
    when the model section is the domain's own schema); `accepts(option, value)` says
    whether the model builds with an option's value (used for depths).
    """
    params: list[Param] = []
    key = learning_rate_key(plain)
    if key is not None:
        rate = float(get_key(plain, key))
        params.append(Param(key, "float", rate / 10, rate * 10, sampling="log"))
    model = plain.get("model") if isinstance(plain.get("model"), dict) else {}
    if model_options is None:
        options = {k: v for k, v in model.items() if k != "name"}
        literals = _literal_ints(schema)
    else:
        options, literals = dict(model_options), {}
    for option, value in options.items():
        param = _option_param(f"model.{option}", option, value, literals.get(option), accepts)
        if param is not None:
            params.append(param)
    return Space(params, source="the default space")


def _option_param(key, option, value, literal, accepts) -> Param | None:
    if literal and len(literal) > 1:
        return Param(key, "choice", values=tuple(literal))
    if _is_number(value) and "dropout" in option and 0 <= value <= MAX_DROPOUT:
        return Param(key, "float", 0.0, MAX_DROPOUT)
    if _is_int(value) and value >= 2 and (option in WIDTHS or option.endswith("_channels")):
        return Param(key, "choice", values=(value // 2, value, value * 2))
    if option in LAYER_WIDTHS and _int_list(value):
        lists = [[max(1, v // 2) for v in value], list(value), [v * 2 for v in value]]
        text = tuple("[" + ", ".join(str(v) for v in lst) + "]" for lst in lists)
        return Param(key, "choice", values=text, encoded=True)
    if option in DEPTHS and _is_int(value) and value >= 1:
        near = sorted(range(max(1, value // 2), 2 * value + 1), key=lambda d: (abs(d - value), d))
        found = [d for d in near if d != value and accepts(option, d)][:2] if near else []
        if found:
            return Param(key, "choice", values=tuple(sorted([value, *found])))
    return None


def _literal_ints(schema: type[BaseModel]) -> dict[str, tuple[int, ...]]:
    """The `model` section's fields whose schema allows only a few ints."""
    field = schema.model_fields.get("model")
    section = field.annotation if field else None
    if not (isinstance(section, type) and issubclass(section, BaseModel)):
        return {}
    found = {}
    for name, sub in section.model_fields.items():
        if typing.get_origin(sub.annotation) is typing.Literal:
            values = typing.get_args(sub.annotation)
            if values and all(_is_int(v) for v in values):
                found[name] = tuple(values)
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(_is_int(v) for v in value)
