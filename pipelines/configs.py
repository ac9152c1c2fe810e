"""Named configs (`pipelines/configs/<domain>/<name>.yaml`) and resolving a run's config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shared.config import ConfigModel, apply_overrides, get_key, put_key, read_yaml, validate
from shared.errors import UserError

CONFIG_ROOT = Path(__file__).parent / "configs"
LOG = logging.getLogger("deepfield")


def _dirs(domain: str, dirs: list[Path] | None) -> list[Path]:
    return dirs if dirs is not None else [CONFIG_ROOT / domain]


def named_configs(domain: str, dirs: list[Path] | None = None) -> list[str]:
    """The named configs of a domain (in pipelines/configs/<domain>/ or `dirs`)."""
    return sorted({p.stem for d in _dirs(domain, dirs) for p in Path(d).glob("*.yaml")})


def config_path(domain: str, name_or_path: str, dirs: list[Path] | None = None) -> Path:
    """A named config of the domain, or a path to a YAML file."""
    for folder in _dirs(domain, dirs):
        named = Path(folder) / f"{name_or_path}.yaml"
        if named.is_file():
            return named
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        raise UserError(f"config file {path} does not exist")
    raise UserError(
        f"unknown {domain} config {name_or_path!r}; named configs: "
        f"{', '.join(named_configs(domain, dirs))}"
    )


def _merged(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...], given: dict[str, Any]
) -> dict[str, Any]:
    """`data` with `--set` overrides, then the CLI shortcuts (dotted keys), applied."""
    merged = apply_overrides(data, list(overrides))
    for key, value in given.items():
        put_key(merged, key, value)
    return merged


def preset_for(
    domain: str,
    keys: tuple[str, ...],
    overrides: list[str] | tuple[str, ...],
    given: dict[str, Any],
    dirs: list[Path] | None = None,
) -> str | None:
    """The named config made for what a command without `--config` asks for, as RL Zoo
    picks its hyperparameters by (algorithm, environment): when the `keys` (rl:
    `agent.name`, `data.source`) set by `--set` or the shortcuts differ from the default
    config's, the first named config (by name) whose `keys` all equal them; None when
    the default config already has those values or no named config does."""
    default = read_yaml(config_path(domain, "default", dirs))
    wanted = {key: get_key(_merged(default, overrides, given), key) for key in keys}
    if all(wanted[key] == get_key(default, key) for key in keys):
        return None
    for name in named_configs(domain, dirs):
        data = read_yaml(config_path(domain, name, dirs))
        if all(get_key(data, key) == value for key, value in wanted.items()):
            return name
    return None


def resolve(
    domain: str,
    schema: type[ConfigModel],
    config: str | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    dirs: list[Path] | None = None,
    preset_keys: tuple[str, ...] = (),
    **shortcuts: Any,
):
    """Load a config, apply `--set` overrides, then CLI shortcuts, and validate it.

    `shortcuts` are the common flags (`--data`, `--seed`, ...) as dotted keys mapped to
    values; `None` means the flag was not given. Without `config`, `preset_keys` pick a
    named config made for the values asked for (`preset_for`), else "default".
    """
    given = {key: value for key, value in shortcuts.items() if value is not None}
    if config is None and preset_keys:
        config = preset_for(domain, preset_keys, overrides, given, dirs)
        if config is not None:
            LOG.info(
                "no --config: using the named config %r, made for %s",
                config,
                ", ".join(
                    f"{k}={get_key(read_yaml(config_path(domain, config, dirs)), k)}"
                    for k in preset_keys
                ),
            )
    source = config_path(domain, config or "default", dirs)
    data: dict[str, Any] = read_yaml(source)
    merged = _merged(data, overrides, given)
    where = f"{source.name} with overrides" if overrides or given else source.name
    return validate(schema, merged, source=where)
