"""One registry utility for everything that is built by name (models, data sources, ...).

Modelled on Model Garden's `official/core/registry.py`: a collection maps names to
factories, and a failed lookup says which names exist and, where one is close, which
one was probably meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from shared.errors import UserError


class Registry:
    """Names to factories for one kind of thing (for example "model")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: Any = None) -> Callable[[Any], Any] | Any:
        """Register `obj` under `name`; usable as a decorator when `obj` is omitted."""

        def add(target: Any) -> Any:
            if name in self._entries and self._entries[name] is not target:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = target
            return target

        return add if obj is None else add(obj)

    def get(self, name: str) -> Any:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(
                f"unknown {self.kind} {name!r}{hint}; known: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
