"""One `save_model` and one `load_model` for every domain's `model.keras`.

Keras 3 finds custom classes only in its own packages and in those already imported,
so loading a Deepfield model needs one import first, as KerasHub models do:

    import shared.zoo  # registers Deepfield's layers and models with Keras
    model = keras.models.load_model("runs/x/model.keras", safe_mode=True)

`load_model` does that import and, if a class is still missing, says which import it needs.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shared.errors import UserError

IMPORT_HINT = "import shared.zoo before keras.models.load_model (it registers Deepfield's layers)"

_WATCHERS: list[Callable[[Any, Path], None]] = []


@contextlib.contextmanager
def watch_saves(callback: Callable[[Any, Path], None]) -> Iterator[None]:
    """Call `callback(model, path)` after each `save_model` inside the block, with the
    model object that was saved: the tuner measures a trial's model from it instead of
    reloading model.keras."""
    _WATCHERS.append(callback)
    try:
        yield
    finally:
        _WATCHERS.remove(callback)


def save_model(model, path: Path) -> None:
    """Save beside the target, then rename, so `path` is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    for callback in list(_WATCHERS):
        callback(model, path)


def load_model(path: Path, *, compile: bool = False):
    """A `.keras` model in safe mode, with the zoo's custom classes registered."""
    import keras

    import shared.zoo  # noqa: F401 - registers the custom layers and models

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except TypeError as err:
        missing = re.search(r"Could not locate (?:class|function) '([^']+)'", str(err))
        if missing:
            raise UserError(
                f"{path} uses class {missing.group(1)!r}, which is not registered; {IMPORT_HINT}"
            ) from None
        raise
