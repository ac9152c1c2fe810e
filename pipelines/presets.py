"""Saved presets: a search's trial as a named config of its domain.

`deepfield <domain> tune --run-dir DIR --save-preset NAME [--trial ID]` (or
`TuneResult.save_preset(NAME)`) writes the trial's full config (its run's config.yaml:
the base config with the trial's values) to `<config dir>/<domain>/NAME.yaml`, where
`--config NAME` finds it next to the built-in named configs (`DomainAPI.config_dirs`).
The config dir is `$DEEPFIELD_CONFIG_DIR`, else `$XDG_CONFIG_HOME/deepfield`, else
`~/.config/deepfield`. A name of a built-in config is refused (it would never be
found), an existing preset is kept unless `force`, and the file appears whole.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from shared.errors import UserError

ENV = "DEEPFIELD_CONFIG_DIR"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def user_config_dir() -> Path:
    """Where saved presets live, one folder per domain."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "deepfield"


def preset_path(domain: str, name: str, force: bool = False) -> Path:
    """The file preset `name` of `domain` is written to; a UserError for a name that is
    no plain name, shadows a built-in config, or is taken (unless `force`)."""
    from pipelines.api import api_for

    if not NAME.fullmatch(name) or name.endswith((".yaml", ".yml")):
        raise UserError(
            f"preset name {name!r}: use letters, digits, '_', '-' and '.', no folder or "
            ".yaml (it is used as --config NAME)"
        )
    target = user_config_dir() / domain / f"{name}.yaml"
    builtin = [
        d / f"{name}.yaml"
        for d in api_for(domain).config_dirs()
        if (d / f"{name}.yaml").is_file() and d.resolve() != target.parent.resolve()
    ]
    if builtin:
        raise UserError(
            f"{name!r} is a built-in {domain} config ({builtin[0]}); a preset of that name "
            "would never be found: choose another name"
        )
    if target.exists() and not force:
        raise UserError(f"preset {name!r} exists ({target}); pass --force to replace it")
    return target


def save_preset(
    search_path: str | Path,
    name: str,
    trial: str | None = None,
    force: bool = False,
    domain: str | None = None,
) -> Path:
    """Write trial `trial` (default: the best) of the search in `search_path` as named
    config `name` of its domain (which must be `domain` when given); returns the file."""
    from pipelines.api import api_for
    from pipelines.tune_results import SEARCH
    from pipelines.tune_tuner import TRIALS
    from shared.config import dump_yaml, read_yaml, validate
    from shared.run_dir import write_atomic

    search_path = Path(search_path)
    if not (search_path / SEARCH).is_file():
        raise UserError(f"{search_path} holds no search ({SEARCH} missing)")
    data = json.loads((search_path / SEARCH).read_text())
    if domain is not None and data["domain"] != domain:
        raise UserError(f"{search_path} holds a {data['domain']} search, not a {domain} one")
    row = chosen_trial(data, trial)
    target = preset_path(data["domain"], name, force)
    source = search_path / TRIALS / row["id"] / "config.yaml"
    if not source.is_file():
        raise UserError(f"trial {row['id']} has no config.yaml in {source.parent}")
    config_class = api_for(data["domain"]).domain.config_class
    config = validate(config_class, read_yaml(source), source=str(source))
    values = ", ".join(f"{k}={v}" for k, v in row["values"].items()) or "none"
    header = (
        f"# {data['domain']} preset {name!r}: trial {row['id']} of the {data['algorithm']} "
        f"search in {search_path.resolve()}\n# ({data['objective']} "
        f"{row['objective']:.6g}; values: {values})\n"
    )
    write_atomic(target, header + dump_yaml(config))
    return target


def chosen_trial(data: dict, trial: str | None) -> dict:
    """The search.json row of `trial` (an id as search.json writes it, or the same
    number without its zero padding), or of the best trial; refused unless complete."""
    rows = data["trials"]
    if trial is None:
        if not data.get("best"):
            raise UserError("the search has no completed trial to save")
        return data["best"]
    found = [r for r in rows if r["id"] == str(trial)]
    if not found and str(trial).isdigit():
        found = [r for r in rows if r["id"].isdigit() and int(r["id"]) == int(trial)]
    if not found:
        ids = ", ".join(r["id"] for r in rows) or "none"
        raise UserError(f"--trial {trial!r}: the search has no such trial (its trials: {ids})")
    row = found[0]
    if row["status"] != "complete" or row.get("objective") is None:
        done = ", ".join(r["id"] for r in rows if r["status"] == "complete") or "none"
        raise UserError(
            f"--trial {row['id']} is {row['status']}, not complete; completed trials: {done}"
        )
    return row
