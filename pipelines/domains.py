"""Finding the domains: every package under `domains` (its `__path__` may span folders).

Importing a domain package registers its `Domain` subclass in `shared.domain.DOMAINS`.
Only metadata is imported here (no TensorFlow), so the CLI builds its groups fast.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from functools import cache

from shared.domain import DOMAINS, Domain
from shared.errors import UserError

LOG = logging.getLogger("deepfield")


@cache
def discover() -> tuple[str, ...]:
    """Import every domain package once; returns the registered names in listing order."""
    import domains

    for info in pkgutil.iter_modules(domains.__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"domains.{info.name}")
        except Exception as err:  # noqa: BLE001 - one broken plug-in must not stop the CLI
            LOG.warning("domain package domains.%s failed to import: %s", info.name, err)
    return tuple(sorted(DOMAINS.names(), key=lambda n: (DOMAINS.get(n).order, n)))


def all_domains() -> list[Domain]:
    """One instance of every registered domain, in listing order."""
    return [get(name) for name in discover()]


@cache
def get(name: str) -> Domain:
    """The registered domain `name` (a UserError listing the others if there is none)."""
    discover()
    if name not in DOMAINS:
        raise UserError(f"unknown domain {name!r}; domains: {', '.join(discover())}")
    return DOMAINS.get(name)()
