"""Named configs resolve, validate, and take overrides and CLI shortcuts."""

import pytest

from domains.vision.config import VisionConfig
from pipelines import configs
from shared.errors import UserError


@pytest.mark.parametrize("name", configs.named_configs("vision"))
def test_every_named_vision_config_validates(name):
    config = configs.resolve("vision", VisionConfig, name)
    assert config.train.epochs >= 1


def test_shortcuts_win_over_yaml_and_keep_raw_strings():
    config = configs.resolve(
        "vision",
        VisionConfig,
        "digits",
        ["train.epochs=2"],
        **{"data.source": "folder:/data/a: b#c", "runtime.seed": 7, "train.jit": None},
    )
    assert config.train.epochs == 2
    assert config.data.source == "folder:/data/a: b#c"
    assert config.runtime.seed == 7
    assert config.train.jit is False


def test_unknown_named_config_lists_the_names():
    with pytest.raises(UserError, match="named configs: .*digits"):
        configs.config_path("vision", "digitz")


def test_config_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("train:\n  epochs: 4\n")
    assert configs.resolve("vision", VisionConfig, str(path)).train.epochs == 4
    with pytest.raises(UserError, match="does not exist"):
        configs.config_path("vision", str(tmp_path / "nope.yaml"))
    path.write_text("train: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        configs.resolve("vision", VisionConfig, str(path))
