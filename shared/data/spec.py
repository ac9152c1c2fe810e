"""Data specs: one string that says where data come from, as `SCHEME:VALUE`.

Examples: `builtin:digits`, `folder:/data/pets`, `idx:/data/mnist`, `npz:/data/x.npz`,
`tfds:mnist`, `tfds:mnist:train`. Each domain accepts its own schemes (vision: builtin,
folder, idx, npz, tfds; others later csv, jsonl, dicom, ...), so the caller passes them in.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from shared.errors import UserError


def parse_spec(spec: str, accepted: Iterable[str] | None = None) -> tuple[str, str]:
    """Split `spec` at its first colon into `(scheme, rest)`.

    Only the first colon splits, so the rest may hold colons of its own (Windows paths,
    `tfds:mnist:train[:10%]`). With `accepted`, any other scheme is a UserError that lists
    the accepted ones.
    """
    accepted = sorted(accepted) if accepted is not None else None
    listing = f"; accepted schemes: {', '.join(accepted)}" if accepted else ""
    scheme, colon, rest = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    scheme, rest = scheme.strip().lower(), rest.strip()
    if not colon or not scheme:
        raise UserError(f"data spec {spec!r} is not of the form SCHEME:VALUE{listing}")
    if accepted is not None and scheme not in accepted:
        close = difflib.get_close_matches(scheme, accepted, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"unknown data scheme {scheme!r} in {spec!r}{hint}{listing}")
    if not rest:
        raise UserError(f"data spec {spec!r} has nothing after '{scheme}:'")
    return scheme, rest
