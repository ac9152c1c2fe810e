"""Data spec parsing."""

import pytest

from shared.data import load_image_data, parse_spec
from shared.errors import UserError

VISION = ["builtin", "folder", "idx", "npz", "tfds"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("builtin:digits", ("builtin", "digits")),
        ("folder:/data/pets", ("folder", "/data/pets")),
        ("tfds:mnist", ("tfds", "mnist")),
        ("tfds:mnist:train[:10%]", ("tfds", "mnist:train[:10%]")),
        ("folder:C:\\data\\pets", ("folder", "C:\\data\\pets")),
        ("NPZ: /x.npz ", ("npz", "/x.npz")),
    ],
)
def test_parse_spec_splits_at_first_colon(spec: str, expected: tuple[str, str]) -> None:
    assert parse_spec(spec, VISION) == expected


def test_parse_spec_without_accepted_list_takes_any_scheme() -> None:
    assert parse_spec("csv:/t.csv") == ("csv", "/t.csv")


def test_unknown_scheme_lists_accepted_schemes() -> None:
    with pytest.raises(UserError, match="accepted schemes: builtin, folder, idx, npz, tfds"):
        parse_spec("csv:/t.csv", VISION)


def test_close_scheme_is_suggested() -> None:
    with pytest.raises(UserError, match="did you mean folder"):
        parse_spec("foldr:/x", VISION)


@pytest.mark.parametrize("spec", ["digits", "", ":digits", "builtin:", "builtin:  "])
def test_malformed_specs_are_user_errors(spec: str) -> None:
    with pytest.raises(UserError, match="data spec"):
        parse_spec(spec, VISION)


def test_load_image_data_rejects_non_vision_scheme() -> None:
    with pytest.raises(UserError, match="unknown data scheme 'csv'.*accepted schemes: builtin"):
        load_image_data("csv:/t.csv")
