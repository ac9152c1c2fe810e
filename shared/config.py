"""Typed configs: YAML files validated by pydantic, with `--set a.b=c` overrides.

A domain declares its config as a `ConfigModel` tree; every section forbids unknown
keys, so a typo is an error that names the valid keys instead of a silently ignored
setting. Values given with `--set` are parsed as YAML scalars (so `3`, `0.1`, `true`,
`[64, 64]` get their natural types) and then type-checked by the schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import UserError


class ConfigModel(BaseModel):
    """Base for every config section: unknown keys are rejected, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, turning unreadable or malformed files into a UserError."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise UserError(f"cannot read config {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise UserError(f"config {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config {path} must be a mapping of keys to values")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b=c` into (["a", "b"], parsed c)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        # YAML 1.1 reads "1e-3" as a string; users mean a number.
        try:
            value = float(value) if value.strip().lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            pass
    return [part for part in key.strip().split(".")], value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `a.b=c` override set (intermediate maps created)."""
    merged = _copy(data)
    for text in overrides:
        path, value = parse_override(text)
        put_key(merged, ".".join(path), value)
    return merged


def get_key(plain: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value at dotted `key` of a plain (YAML) config, or `default` where it has none."""
    node: Any = plain
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_key(plain: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of the plain config with dotted `key` set to `value`."""
    merged = _copy(plain)
    put_key(merged, key, value)
    return merged


def put_key(plain: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted `key` of the plain config in place, making maps on the way (a value
    that is not a map there is replaced)."""
    node, path = plain, key.split(".")
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _copy(plain: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(yaml.safe_dump(plain)) or {}


def valid_keys(schema: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key the schema accepts, for error messages and `--help`."""
    keys = []
    for name, field in schema.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(valid_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _section_schema(schema: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    for part in path:
        field = schema.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        schema = annotation
    return schema


def validate(schema: type[ConfigModel], data: dict[str, Any], source: str = "config"):
    """Validate `data` against `schema`; the first problem becomes one clear UserError."""
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        problem = err.errors()[0]
        loc = tuple(problem["loc"])
        key = ".".join(str(part) for part in loc)
        if problem["type"] == "extra_forbidden":
            section = _section_schema(schema, loc[:-1])
            prefix = ".".join(str(p) for p in loc[:-1])
            choices = valid_keys(section, f"{prefix}." if prefix else "") if section else []
            raise UserError(
                f"unknown config key {key!r} in {source}; valid keys: {', '.join(choices)}"
            ) from None
        given = problem.get("input")
        raise UserError(
            f"bad value for {key} in {source}: {problem['msg']} (got {given!r})"
        ) from None


def to_plain(config: BaseModel) -> dict[str, Any]:
    """The config as plain YAML-able data, the form written to a run's config.yaml."""
    return config.model_dump(mode="json")


def dump_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(to_plain(config), sort_keys=False)
