"""Named configs (`pipelines/configs/<domain>/<name>.yaml`) and resolving a run's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.config import ConfigModel, apply_overrides, read_yaml, validate
from shared.errors import UserError

CONFIG_ROOT = Path(__file__).parent / "configs"


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


def resolve(
    domain: str,
    schema: type[ConfigModel],
    config: str | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    dirs: list[Path] | None = None,
    **shortcuts: Any,
):
    """Load a config, apply `--set` overrides, then CLI shortcuts, and validate it.

    `shortcuts` are the common flags (`--data`, `--seed`, ...) as dotted keys mapped to
    values; `None` means the flag was not given.
    """
    source = config_path(domain, config or "default", dirs)
    data: dict[str, Any] = read_yaml(source)
    merged = apply_overrides(data, list(overrides))
    given = {key: value for key, value in shortcuts.items() if value is not None}
    for key, value in given.items():
        node = merged
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    where = f"{source.name} with overrides" if overrides or given else source.name
    return validate(schema, merged, source=where)
