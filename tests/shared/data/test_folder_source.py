"""The folder source: one sub-folder per class, lazily decoded, corrupt files counted."""

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.data import load_image_data
from shared.errors import UserError


def _save(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _gray(value: int, size=(6, 5)) -> np.ndarray:
    return np.full(size, value, np.uint8)


def _class_folder(root: Path, per_class: dict[str, int], size=(6, 5)) -> Path:
    """PNG/JPG/BMP grey images; each pixel value encodes class and index (lossless for PNG)."""
    exts = [".png", ".PNG", ".bmp", ".jpg", ".jpeg"]
    for c, (name, count) in enumerate(sorted(per_class.items())):
        for i in range(count):
            _save(root / name / f"img{i}{exts[i % len(exts)]}", _gray(40 * c + i, size))
    return root


def test_folder_classes_shapes_and_lazy_files(tmp_path: Path) -> None:
    root = _class_folder(tmp_path / "d", {"cat": 20, "dog": 10, "emu": 10})
    (root / "notes.txt").write_text("ignored")
    (root / "cat" / "readme.md").write_text("ignored")
    data = load_image_data(f"folder:{root}")
    assert data.class_names == ["cat", "dog", "emu"]
    assert data.image_shape == (6, 5, 1)  # all grey -> grayscale in auto mode
    assert all(split.kind == "files" for split in data.splits.values())
    assert [len(data.splits[k]) for k in ("train", "validation", "test")] == [28, 4, 8]
    counts = data.split_info["splits"]["test"]["class_counts"]
    assert counts == {"cat": 4, "dog": 2, "emu": 2}  # stratified
    images, labels = data.splits["test"].arrays()
    assert images.shape == (8, 6, 5, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int32
    # the lossless PNG/BMP files decode to exactly the written values, per class
    for image, label, path in zip(images, labels, data.splits["test"].paths, strict=True):
        assert Path(path).parent.name == data.class_names[label]
        if Path(path).suffix.lower() in (".png", ".bmp"):
            assert np.all(image == 40 * label + int(Path(path).stem[3:]))


def test_folder_split_is_seeded(tmp_path: Path) -> None:
    root = _class_folder(tmp_path / "d", {"a": 15, "b": 15})
    first = load_image_data(f"folder:{root}", seed=1).splits["test"].paths
    again = load_image_data(f"folder:{root}", seed=1).splits["test"].paths
    other = load_image_data(f"folder:{root}", seed=2).splits["test"].paths
    assert list(first) == list(again) and set(first) != set(other)


def test_folder_auto_colour_and_forced_modes(tmp_path: Path) -> None:
    root = _class_folder(tmp_path / "d", {"a": 5, "b": 5})
    rgb = np.zeros((6, 5, 3), np.uint8)
    rgb[..., 0] = 200
    _save(root / "b" / "red.png", rgb)
    data = load_image_data(f"folder:{root}", validation_split=0.1, test_split=0.1)
    assert data.image_shape == (6, 5, 3)
    images, _ = data.splits["train"].arrays()
    assert images.shape[1:] == (6, 5, 3)
    gray = load_image_data(f"folder:{root}", color_mode="grayscale")
    assert gray.image_shape == (6, 5, 1)
    assert gray.splits["train"].arrays(limit=3)[0].shape == (3, 6, 5, 1)


def test_folder_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    root = _class_folder(tmp_path / "d", {"a": 5, "b": 5})
    _save(root / "a" / "big.png", _gray(9, size=(12, 10)))
    with pytest.raises(UserError, match="different sizes .* set data.image_size"):
        load_image_data(f"folder:{root}")
    data = load_image_data(f"folder:{root}", image_size=(4, 4))
    assert data.image_shape == (4, 4, 1)
    images = np.concatenate([s.arrays()[0] for s in data.splits.values()])
    assert images.shape == (11, 4, 4, 1)


def test_corrupt_files_are_counted_and_skipped(tmp_path: Path, caplog) -> None:
    root = _class_folder(tmp_path / "d", {"a": 10, "b": 10})
    (root / "a" / "garbage.png").write_bytes(b"this is not a png")
    jpeg = root / "b" / "cut.jpg"
    _save(jpeg, np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    jpeg.write_bytes(jpeg.read_bytes()[:200])  # truncated pixel data
    with caplog.at_level(logging.WARNING):
        data = load_image_data(f"folder:{root}", on_corrupt="skip")
    assert data.split_info["corrupt_skipped"] == 2
    assert sorted(Path(p).name for p in data.split_info["corrupt_examples"]) == [
        "cut.jpg",
        "garbage.png",
    ]
    assert sum(len(s) for s in data.splits.values()) == 20
    assert "skipping 2 corrupt" in caplog.text
    with pytest.raises(UserError, match="2 image file.* corrupt .*first: .*garbage.png"):
        load_image_data(f"folder:{root}", on_corrupt="fail")


def test_palette_bmp_is_treated_as_unreadable(tmp_path: Path) -> None:
    root = _class_folder(tmp_path / "d", {"a": 5, "b": 5})
    palette = Image.fromarray(np.zeros((6, 5, 3), np.uint8)).convert("P")
    palette.save(root / "a" / "pal.bmp")
    data = load_image_data(f"folder:{root}")
    assert data.split_info["corrupt_skipped"] == 1


def test_all_corrupt_is_user_error(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(b"junk")
    with pytest.raises(UserError, match="all image file.* corrupt"):
        load_image_data(f"folder:{tmp_path}")


def test_shipped_split_folders(tmp_path: Path) -> None:
    _class_folder(tmp_path / "train", {"a": 8, "b": 8})
    _class_folder(tmp_path / "val", {"a": 2, "b": 2})
    _class_folder(tmp_path / "test", {"a": 3, "b": 3})
    data = load_image_data(f"folder:{tmp_path}")
    assert data.class_names == ["a", "b"]
    info = data.split_info["splits"]
    assert {k: (v["origin"], v["size"]) for k, v in info.items()} == {
        "train": ("shipped", 16),
        "validation": ("shipped", 4),
        "test": ("shipped", 6),
    }
    assert all("/val/" in p for p in data.splits["validation"].paths)


def test_shipped_train_and_test_only_derives_validation(tmp_path: Path) -> None:
    _class_folder(tmp_path / "train", {"a": 10, "b": 10})
    _class_folder(tmp_path / "test", {"a": 3, "b": 3})
    info = load_image_data(f"folder:{tmp_path}").split_info["splits"]
    assert info["test"]["origin"] == "shipped" and info["test"]["size"] == 6
    assert info["validation"]["origin"] == "seeded fraction" and info["validation"]["size"] == 2
    assert info["validation"]["of"] == "shipped train"


def test_bad_folders_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_image_data(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UserError, match="is a file"):
        load_image_data(f"folder:{tmp_path / 'file.png'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty folder"):
        load_image_data(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "empty" / "a").mkdir()
    (tmp_path / "empty" / "a" / "notes.txt").write_text("no images")
    with pytest.raises(UserError, match="empty folder"):
        load_image_data(f"folder:{tmp_path / 'empty'}")
    single = _class_folder(tmp_path / "single", {"only": 5})
    with pytest.raises(UserError, match=r"single class \(only\); need at least 2"):
        load_image_data(f"folder:{single}")
    both = tmp_path / "both"
    for split in ("train", "val", "validation"):
        _class_folder(both / split, {"a": 2, "b": 2})
    with pytest.raises(UserError, match="both val/ and validation/"):
        load_image_data(f"folder:{both}")


def test_duplicate_files_are_found_by_their_bytes(tmp_path: Path) -> None:
    _class_folder(tmp_path / "train", {"a": 10, "b": 10})
    for c, name in enumerate("ab"):
        for i in range(3):
            _save(tmp_path / "test" / name / f"t{i}.png", _gray(200 + 10 * c + i))
    # the same bytes under other names: one copy inside train, one leaking into shipped test
    train_a = tmp_path / "train" / "a"
    (train_a / "copy.png").write_bytes((train_a / "img0.png").read_bytes())
    (tmp_path / "test" / "a" / "leak.png").write_bytes((train_a / "img5.png").read_bytes())
    data = load_image_data(f"folder:{tmp_path}")
    duplicates = data.split_info["duplicates"]
    assert duplicates["hashed"] == "file bytes"
    assert duplicates["rows"] == 2 and duplicates["across_splits"] == 1  # shipped: not moved
    holders = [
        name
        for name, split in data.splits.items()
        for p in split.paths
        if Path(p).name in ("img0.png", "copy.png") and Path(p).parent == train_a
    ]
    assert len(holders) == 2 and len(set(holders)) == 1  # the train copy stays with its twin
