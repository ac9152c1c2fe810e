"""Export layout rules that need no model: versions, models.config, --model paths."""

from __future__ import annotations

import pytest

from shared.errors import UserError
from shared.export import next_version, resolve_export, write_models_config
from shared.export.saved_model import _check_target


def _version(root, name, version, servable=True):
    path = root / name / str(version)
    path.mkdir(parents=True)
    if servable:
        (path / "saved_model.pb").write_bytes(b"")
    return path


def test_next_version_ignores_partial_and_non_numeric(tmp_path):
    assert next_version(tmp_path / "digits") == 1
    _version(tmp_path, "digits", 1)
    _version(tmp_path, "digits", 7)
    (tmp_path / "digits" / ".partial-8-123").mkdir()
    (tmp_path / "digits" / "notes").mkdir()
    assert next_version(tmp_path / "digits") == 8


def test_models_config_lists_every_servable_model(tmp_path):
    _version(tmp_path, "digits", 1)
    _version(tmp_path, "credit", 3)
    _version(tmp_path, "empty", 1, servable=False)
    (tmp_path / "loose.tflite").write_bytes(b"")
    text = write_models_config(tmp_path, base_path="/srv/models/").read_text()
    assert text.startswith("model_config_list {") and text.rstrip().endswith("}")
    assert text.count("config {") == 2
    assert 'name: "credit"' in text and 'base_path: "/srv/models/credit"' in text
    assert 'name: "digits"' in text and "empty" not in text
    assert text.count('model_platform: "tensorflow"') == 2


def test_resolve_export_takes_model_or_version_folder(tmp_path):
    _version(tmp_path, "digits", 2)
    newest = _version(tmp_path, "digits", 10)
    assert resolve_export(tmp_path / "digits") == newest
    assert resolve_export(tmp_path / "digits" / "2") == tmp_path / "digits" / "2"
    with pytest.raises(UserError, match="does not exist"):
        resolve_export(tmp_path / "nothing")
    with pytest.raises(UserError, match="neither"):
        resolve_export(tmp_path)


def test_target_checks(tmp_path):
    assert _check_target(tmp_path / "new", "digits", None, False) == 1
    _version(tmp_path, "digits", 1)
    with pytest.raises(UserError, match="already exists"):
        _check_target(tmp_path, "digits", 1, False)
    assert _check_target(tmp_path, "digits", 1, True) == 1
    with pytest.raises(UserError, match="positive"):
        _check_target(tmp_path, "digits", 0, False)
    with pytest.raises(UserError, match="--name"):
        _check_target(tmp_path, "../escape", None, False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        _check_target(tmp_path / "file", "digits", None, False)
