"""Config machinery: overrides are typed, unknown keys are named with the valid ones."""

import pytest

from domains.vision.config import VisionConfig
from shared.config import apply_overrides, dump_yaml, parse_override, valid_keys, validate
from shared.errors import UserError


def test_override_values_get_yaml_types():
    assert parse_override("train.epochs=3") == (["train", "epochs"], 3)
    assert parse_override("train.learning_rate=1e-3")[1] == pytest.approx(1e-3)
    assert parse_override("train.jit=true")[1] is True
    assert parse_override("data.image_size=[32, 32]")[1] == [32, 32]
    assert parse_override("data.source=folder:/tmp/x")[1] == "folder:/tmp/x"


def test_override_without_equals_is_a_user_error():
    with pytest.raises(UserError, match="key=value"):
        parse_override("train.epochs")


def test_apply_overrides_creates_sections_and_leaves_input_alone():
    base = {"train": {"epochs": 5}}
    merged = apply_overrides(base, ["train.epochs=7", "model.depth=18"])
    assert merged == {"train": {"epochs": 7}, "model": {"depth": 18}}
    assert base == {"train": {"epochs": 5}}


def test_unknown_key_lists_valid_keys_of_its_section():
    with pytest.raises(UserError) as err:
        validate(VisionConfig, {"train": {"epoch": 3}})
    message = str(err.value)
    assert "unknown config key 'train.epoch'" in message
    assert "train.epochs" in message and "train.batch_size" in message


def test_unknown_top_level_key_lists_sections():
    with pytest.raises(UserError, match="valid keys: .*model.name"):
        validate(VisionConfig, {"trian": {}})


def test_wrong_type_is_reported_with_key_and_value():
    with pytest.raises(UserError, match=r"train\.epochs.*'many'"):
        validate(VisionConfig, {"train": {"epochs": "many"}})
    with pytest.raises(UserError, match="train.precision"):
        validate(VisionConfig, {"train": {"precision": "float8"}})


def test_model_options_pass_through_for_the_zoo_to_check():
    config = validate(VisionConfig, {"model": {"name": "resnet", "depth": 18}})
    assert config.model.options() == {"depth": 18}


def test_dump_round_trips():
    config = validate(VisionConfig, {"train": {"epochs": 2}, "data": {"image_size": [16, 16]}})
    import yaml

    again = validate(VisionConfig, yaml.safe_load(dump_yaml(config)))
    assert again == config
    assert "runtime.seed" in valid_keys(VisionConfig)
