"""`deepfield zoo list | show`: the architecture zoo at a glance.

`zoo list` prints one row per model as soon as it has it: the kind, the preset input
(the paper's), classes, weight layers, parameters and forward FLOPs per example. The
figures come from the catalogue (shared/model_catalog.json, see shared.model_catalog
for how FLOPs are counted), so the rows come at once, before TensorFlow is imported;
only a model the catalogue has no figures for is built and measured on the spot, and
`--measure` builds and measures every one (about a minute).

For notebooks and scripts, `build_model`, `model_info` and `model_options` are the zoo's
public functions: `from pipelines import zoo; zoo.build_model("resnet", input_shape=...)`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

from pipelines.table import row_format
from shared.config import parse_override
from shared.errors import UserError
from shared.model_catalog import (
    build_preset,
    entries,
    forward_flops,
    measure,
    preset,
    preset_arguments,
)

__all__ = [
    "build_model",
    "forward_flops",
    "list_models",
    "listing_lines",
    "model_info",
    "model_kinds",
    "model_options",
    "model_row",
    "preset_arguments",
    "select_models",
    "show_model",
]

HEADER = ["model", "kind", "input", "classes", "weight layers", "parameters", "FLOPs"]
RIGHT = {3, 4, 5, 6}
GLOB_CHARACTERS = frozenset("*?[")


def _human(count: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(int(count))


def build_model(name: str, **options: Any):
    """Zoo model `name` as a Keras model, built as runs build it: `input_shape`,
    `num_classes` and the model's own options (`model_options(name)`; a config's
    `model.*` keys). An unknown name or option is a UserError naming the valid ones."""
    from shared.zoo import build_model as build

    return build(name, **options)


def model_info(name: str) -> str:
    """What zoo model `name` is, in a paragraph, and its options with their defaults."""
    from shared.zoo import model_info as info

    return info(name)


def model_options(name: str) -> dict[str, Any]:
    """Zoo model `name`'s option names and their defaults."""
    from shared.zoo import model_options as options

    return options(name)


def model_row(name: str) -> dict[str, Any]:
    """One listing row measured now: the model built at its preset (imports TensorFlow)."""
    from shared.zoo import model_spec

    spec = model_spec(name)
    return {"model": name, "kind": spec.kind, "modality": spec.modality, **measure(name)}


def _live_kind(name: str) -> str:
    from shared.zoo import model_spec

    return model_spec(name).kind


def _catalogue() -> dict[str, dict]:
    """Model name -> catalogue entry; the live registry's if the catalogue is missing."""
    catalog = entries()
    if catalog:
        return catalog
    from shared.model_catalog import from_registry

    return from_registry()


def model_kinds() -> list[str]:
    """The kinds of model the zoo has (image_classifier, detector, ...), from the catalogue."""
    return sorted({entry["kind"] for entry in entries().values()})


def select_models(kind: str | None = None, pattern: str | None = None) -> list[str]:
    """The model names `zoo list` shows: of `kind`, matching the glob `pattern` (a plain
    word matches anywhere in the name); an unknown kind or a pattern that matches no
    model is a UserError that lists what there is."""
    catalog = _catalogue()
    kinds = sorted({entry["kind"] for entry in catalog.values()})
    if kind is not None and kind not in kinds:
        raise UserError(f"unknown model kind {kind!r}; kinds: {', '.join(kinds)}")
    names = [n for n in sorted(catalog) if kind is None or catalog[n]["kind"] == kind]
    if pattern:
        glob = pattern if GLOB_CHARACTERS & set(pattern) else f"*{pattern}*"
        matched = [n for n in names if fnmatch.fnmatchcase(n, glob)]
        if not matched:
            among = f"{kind} models" if kind else "models"
            raise UserError(f"no model matches {pattern!r}; {among}: {', '.join(names)}")
        names = matched
    return names


def listing_lines(
    names: list[str] | None = None,
    *,
    kind: str | None = None,
    pattern: str | None = None,
    measure_all: bool = False,
) -> Iterator[str]:
    """The `zoo list` table a line at a time (header first), each row as soon as it is
    known: stored figures at once, a model without them (or every model, `measure_all`)
    built and measured first. Notes on models measured now come last."""
    names = list(names) if names else select_models(kind, pattern)
    catalog = _catalogue()
    stored = {} if measure_all else {n: preset(n) for n in names}
    inputs = [f["input"] for f in stored.values() if f] or ["224x224x3"]
    widths = [
        max(len(HEADER[0]), *map(len, names)),
        max([len(HEADER[1]), *(len(catalog.get(n, {}).get("kind", "")) for n in names)]),
        max(len(HEADER[2]), *map(len, inputs)),
        len(HEADER[3]),
        len(HEADER[4]),
        13,
        9,
    ]
    line = row_format(widths, RIGHT)
    yield line(HEADER)
    yield "-" * len(line(HEADER))
    measured_now = []
    for name in names:
        figures = stored.get(name)
        if figures is None:
            figures = measure(name)
            if not measure_all:
                measured_now.append(name)
        kind_of = catalog[name]["kind"] if name in catalog else _live_kind(name)
        yield line(
            [
                name,
                kind_of,
                figures["input"],
                str(figures["classes"] or "-"),
                str(figures["weight_layers"]),
                f"{figures['parameters']:,}",
                _human(figures["flops"]),
            ]
        )
    if measured_now:
        yield ""
        yield (
            f"measured now (no figures in shared/model_catalog.json): {', '.join(measured_now)}; "
            f"`python -m shared.model_catalog {' '.join(measured_now)}` stores them"
        )


def list_models(names: list[str] | None = None, **selection: Any) -> str:
    """The `zoo list` table as one text (see listing_lines)."""
    return "\n".join(listing_lines(names, **selection))


def show_model(name: str, overrides: list[str]) -> str:
    """A model's description and Keras summary, with `--set` options applied."""
    from shared.zoo import GAN, model_info

    options: dict[str, Any] = {}
    for text in overrides:
        path, value = parse_override(text)
        if len(path) != 1:
            raise UserError(f"zoo show takes plain option names, got {'.'.join(path)!r}")
        options[path[0]] = value
    model = build_preset(name, **options)
    lines: list[str] = []
    parts = [model.generator, model.discriminator] if isinstance(model, GAN) else [model]
    for part in parts:
        part.summary(print_fn=lambda line, **_: lines.append(line), expand_nested=True)
    return model_info(name) + "\n\n" + "\n".join(lines)
