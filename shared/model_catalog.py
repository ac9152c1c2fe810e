"""The zoo's catalogue: every model's kind and input modalities, readable without Keras.

`shared.zoo` registers models with Keras builders, so reading its registry imports
TensorFlow (seconds, and C++ start-up lines on the console). A domain checks a config's
`model.name` before that, against this catalogue: `model_catalog.json`, generated from the
registry by `python -m shared.model_catalog` and kept equal to it by a test
(tests/shared/zoo/test_zoo_list.py), so it cannot silently drift.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from shared.errors import UserError

CATALOG_FILE = Path(__file__).with_name("model_catalog.json")


@cache
def entries() -> dict[str, dict]:
    """Model name -> {"kind": ..., "modalities": [...]} (empty if the file is missing)."""
    try:
        return json.loads(CATALOG_FILE.read_text())
    except (OSError, ValueError):
        return {}


def check_model(name: str, fits: Callable[[str, tuple[str, ...]], bool], user: str) -> None:
    """Refuse `name` unless it is a zoo model that `fits(kind, modalities)` for `user`.

    A name the catalogue does not know is left to the zoo itself (it may have been
    registered since the catalogue was written); an unknown name close to a known one
    is refused with the suggestion.
    """
    catalog = entries()
    if not catalog:
        return
    usable = [n for n, e in sorted(catalog.items()) if fits(e["kind"], tuple(e["modalities"]))]
    if name not in catalog:
        close = difflib.get_close_matches(name, list(catalog), n=3)
        if close:
            raise UserError(
                f"unknown model {name!r} (did you mean {', '.join(close)}?); "
                f"models {user} can train: {', '.join(usable)}"
            )
        return
    entry = catalog[name]
    if not fits(entry["kind"], tuple(entry["modalities"])):
        raise UserError(
            f"model {name!r} ({entry['kind']}) cannot be trained by {user}; "
            f"models that can: {', '.join(usable)}"
        )


def from_registry() -> dict[str, dict]:
    """The catalogue as the live registry says it (imports the zoo, so TensorFlow)."""
    from shared.zoo import MODELS, model_spec

    return {
        name: {"kind": model_spec(name).kind, "modalities": list(model_spec(name).modalities)}
        for name in MODELS.names()
    }


if __name__ == "__main__":
    CATALOG_FILE.write_text(json.dumps(from_registry(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {CATALOG_FILE} ({len(from_registry())} models)")
