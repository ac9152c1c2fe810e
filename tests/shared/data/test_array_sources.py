"""In-memory sources (builtin, npz, idx), their seeded splits and duplicate reports."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from shared.data import describe, load_image_data
from shared.data.sources import read_idx
from shared.errors import UserError


@pytest.fixture(scope="module")
def digits():
    return load_image_data("builtin:digits")


def _toy(n: int = 60, classes: int = 3, shape=(6, 5), seed: int = 0):
    """n uint8 images whose first pixel encodes the index, with balanced labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    x[:, 0, 0] = np.arange(n) % 256
    y = np.arange(n) % classes
    return x, y


# --------------------------------------------------------------------------- builtin:digits


def test_digits_shapes_dtypes_and_pixel_scale(digits) -> None:
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.num_classes == 10
    assert digits.image_shape == (8, 8, 1)
    images, labels = digits.splits["train"].arrays()
    assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, 1)
    assert labels.dtype == np.int32
    assert images.min() == 0 and images.max() == 255  # 0..16 rescaled, not 0..1
    # 16 * 255/16 = 255 and 8 * 255/16 = 127.5 -> 128: only these scaled values occur.
    assert set(np.unique(images)) <= {round(v * 255 / 16) for v in range(17)}


def test_digits_split_sizes_and_info(digits) -> None:
    sizes = {name: len(split) for name, split in digits.splits.items()}
    assert sizes == {"train": 1258, "validation": 180, "test": 359}
    info = json.loads(json.dumps(digits.split_info))  # must be JSON-serialisable
    assert info["seed"] == 42 and info["stratified"] is True
    assert info["splits"]["validation"] == {
        "size": 180,
        "origin": "seeded fraction",
        "fraction": 0.1,
        "of": "whole dataset",
        "class_counts": info["splits"]["validation"]["class_counts"],
    }
    assert info["splits"]["train"]["origin"] == "remainder"
    assert info["corrupt_skipped"] == 0 and info["corrupt_examples"] == []
    for name in ("train", "validation", "test"):
        counts = info["splits"][name]["class_counts"]
        assert sum(counts.values()) == sizes[name]
    assert "10 classes" in describe(digits) and "test 359" in describe(digits)


def test_digits_splits_are_stratified(digits) -> None:
    for name, fraction in (("validation", 0.1), ("test", 0.2)):
        counts = digits.split_info["splits"][name]["class_counts"]
        _, totals = np.unique(
            np.concatenate([s.labels for s in digits.splits.values()]), return_counts=True
        )
        for count, total in zip(counts.values(), totals, strict=True):
            assert abs(count - fraction * total) <= 1.5


def test_same_seed_same_split_other_seed_other_split(digits) -> None:
    again = load_image_data("builtin:digits", seed=42)
    other = load_image_data("builtin:digits", seed=7)
    x, y = digits.splits["test"].arrays()
    x2, y2 = again.splits["test"].arrays()
    x3, _ = other.splits["test"].arrays()
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert x.shape == x3.shape and not np.array_equal(x, x3)


def test_digits_resize_and_rgb() -> None:
    data = load_image_data("builtin:digits", image_size=(16, 12), color_mode="rgb")
    assert data.image_shape == (16, 12, 3)
    images, _ = data.splits["validation"].arrays(limit=5)
    assert images.shape == (5, 16, 12, 3) and images.dtype == np.uint8
    assert np.array_equal(images[..., 0], images[..., 2])  # grey repeated into RGB


def test_unknown_builtin_lists_known_names() -> None:
    with pytest.raises(UserError, match="known: digits"):
        load_image_data("builtin:digit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"color_mode": "cmyk"}, "color_mode must be one of auto, grayscale, rgb"),
        ({"on_corrupt": "ignore"}, "on_corrupt must be one of skip, fail"),
        ({"image_size": (0, 8)}, "image_size must be positive"),
        ({"image_size": "big"}, r"image_size must be \(height, width\)"),
        ({"validation_split": 0.5, "test_split": 0.5}, "must be below 1"),
        ({"test_split": 0.0}, "test_split must be between 0 and 1"),
    ],
)
def test_bad_options_are_user_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_image_data("builtin:digits", **kwargs)


# --------------------------------------------------------------------------- duplicates


def test_duplicate_images_are_kept_in_one_split_and_reported(tmp_path: Path) -> None:
    x, y = _toy(100)
    x[50:60], y[50:60] = x[0:10], y[0:10]  # rows 50..59 repeat rows 0..9 exactly
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    data = load_image_data(f"npz:{tmp_path / 'd.npz'}")
    duplicates = data.split_info["duplicates"]
    assert duplicates["rows"] == 10 and duplicates["keys"] == 10
    assert duplicates["across_splits"] == 0 and duplicates["hashed"] == "pixel bytes"
    assert duplicates["would_straddle"] > 0  # a split ignoring them would have leaked some
    ids = {name: split.images[:, 0, 0, 0] for name, split in data.splits.items()}
    for i in range(10):  # both copies of image i sit in one split
        assert sorted(int((values == i).sum()) for values in ids.values()) == [0, 0, 2]
    assert "Found 10 exact duplicate image(s), 0 of them across splits" in describe(data)


def test_duplicates_across_shipped_splits_are_reported_not_moved(tmp_path: Path) -> None:
    x, y = _toy(60)
    np.savez(tmp_path / "d.npz", x_train=x[:50], y_train=y[:50], x_test=x[:4], y_test=y[:4])
    data = load_image_data(f"npz:{tmp_path / 'd.npz'}")
    assert data.split_info["duplicates"]["across_splits"] == 4
    assert len(data.splits["test"]) == 4


# --------------------------------------------------------------------------- npz


def test_npz_train_only_gets_seeded_validation_and_test(tmp_path: Path) -> None:
    x, y = _toy(100)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    data = load_image_data(f"npz:{tmp_path / 'd.npz'}")
    assert data.image_shape == (6, 5, 1)
    assert [len(data.splits[k]) for k in ("train", "validation", "test")] == [70, 10, 20]
    # every original image ends up in exactly one split
    firsts = np.concatenate([s.images[:, 0, 0, 0] for s in data.splits.values()])
    assert sorted(firsts) == sorted(x[:, 0, 0])
    assert data.class_names == ["0", "1", "2"]


def test_npz_shipped_splits_and_validation_alias(tmp_path: Path) -> None:
    x, y = _toy(40)
    np.savez(
        tmp_path / "d.npz",
        x_train=x[:20],
        y_train=y[:20],
        x_validation=x[20:25],
        y_validation=y[20:25],
        x_test=x[25:],
        y_test=y[25:],
    )
    data = load_image_data(f"npz:{tmp_path / 'd.npz'}")
    info = data.split_info
    assert {k: v["origin"] for k, v in info["splits"].items()} == dict.fromkeys(
        ("train", "validation", "test"), "shipped"
    )
    assert [info["splits"][k]["size"] for k in ("train", "validation", "test")] == [20, 5, 15]
    assert info["stratified"] is False
    assert np.array_equal(data.splits["validation"].images[..., 0], x[20:25])


def test_npz_medmnist_keys_column_labels_rgb_and_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (30, 4, 4, 3), dtype=np.uint8)
    labels = (np.arange(30) % 2).reshape(-1, 1)  # MedMNIST labels are (N, 1)
    np.savez(
        tmp_path / "m.npz",
        train_images=rgb[:20],
        train_labels=labels[:20],
        val_images=rgb[20:24],
        val_labels=labels[20:24],
        test_images=rgb[24:],
        test_labels=labels[24:],
        class_names=np.array(["benign", "malignant"]),
    )
    data = load_image_data(f"npz:{tmp_path / 'm.npz'}")
    assert data.class_names == ["benign", "malignant"]
    assert data.image_shape == (4, 4, 3)
    images, y = data.splits["test"].arrays()
    assert np.array_equal(images, rgb[24:]) and y.tolist() == labels[24:, 0].tolist()
    gray = load_image_data(f"npz:{tmp_path / 'm.npz'}", color_mode="grayscale")
    assert gray.image_shape == (4, 4, 1)


def test_npz_float_images_in_unit_range_are_scaled(tmp_path: Path) -> None:
    x = np.tile(np.linspace(0.0, 1.0, 6, dtype=np.float32), (30, 6, 1))
    np.savez(tmp_path / "f.npz", x_train=x, y_train=np.arange(30) % 2)
    data = load_image_data(f"npz:{tmp_path / 'f.npz'}")
    images, _ = data.splits["train"].arrays(limit=1)
    assert images.dtype == np.uint8
    assert images[0, 0, :, 0].tolist() == [0, 51, 102, 153, 204, 255]


def test_npz_labels_are_renumbered_by_sorted_value(tmp_path: Path) -> None:
    x, _ = _toy(30)
    np.savez(tmp_path / "r.npz", x_train=x, y_train=np.where(np.arange(30) % 2, 7, 3))
    data = load_image_data(f"npz:{tmp_path / 'r.npz'}")
    assert data.class_names == ["3", "7"]
    assert set(np.concatenate([s.labels for s in data.splits.values()])) == {0, 1}


_IMAGES = np.zeros((30, 4, 4))
_TWO_CLASSES = np.arange(30) % 2


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": _IMAGES, "labels": _TWO_CLASSES}, "keys found: images, labels"),
        (
            {"x_train": _IMAGES, "y_train": _TWO_CLASSES, "x_val": _IMAGES[:2]},
            "has x_val but not y_val",
        ),
        ({"x_train": _IMAGES, "y_train": np.zeros(30, int)}, "1 class"),
        ({"x_train": _IMAGES + 300, "y_train": _TWO_CLASSES}, "pixel values span 300..300"),
        ({"x_train": _IMAGES, "y_train": np.zeros((30, 3))}, "multi-label"),
        ({"x_train": _IMAGES, "y_train": _TWO_CLASSES[:29]}, "30 train images but 29 labels"),
        (
            {"x_train": _IMAGES, "y_train": np.arange(30) % 3, "class_names": np.array(["a", "b"])},
            "labels span 0..2 but there are 2 class names",
        ),
    ],
)
def test_bad_npz_contents_are_user_errors(tmp_path: Path, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message):
        load_image_data(f"npz:{tmp_path / 'bad.npz'}")


def test_npz_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_image_data(f"npz:{tmp_path / 'nope.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="cannot read .*junk.npz as .npz"):
        load_image_data(f"npz:{tmp_path / 'junk.npz'}")


# --------------------------------------------------------------------------- idx


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding: 0, 0, dtype 0x08 (ubyte), ndim, big-endian uint32 dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def _write_mnist_dir(directory: Path, gz: bool, n_train: int = 50, n_test: int = 20) -> tuple:
    directory.mkdir(parents=True, exist_ok=True)
    x, y = _toy(n_train + n_test, classes=4, shape=(7, 7))
    files = {
        "train-images-idx3-ubyte": x[:n_train],
        "train-labels-idx1-ubyte": y[:n_train],
        "t10k-images-idx3-ubyte": x[n_train:],
        "t10k-labels-idx1-ubyte": y[n_train:],
    }
    for name, array in files.items():
        data = _idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return x, y


def test_idx_directory_plain_and_gz_give_the_same_data(tmp_path: Path) -> None:
    x, y = _write_mnist_dir(tmp_path / "plain", gz=False)
    _write_mnist_dir(tmp_path / "gz", gz=True)
    plain = load_image_data(f"idx:{tmp_path / 'plain'}")
    zipped = load_image_data(f"idx:{tmp_path / 'gz'}")
    for name in ("train", "validation", "test"):
        a, b = plain.splits[name].arrays(), zipped.splits[name].arrays()
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # t10k is the shipped test split; validation is 10% of the shipped train files
    assert np.array_equal(plain.splits["test"].images[..., 0], x[50:])
    info = plain.split_info["splits"]
    assert info["test"]["origin"] == "shipped" and info["test"]["size"] == 20
    assert info["validation"] == {
        **info["validation"],
        "size": 5,
        "origin": "seeded fraction",
        "of": "shipped train",
    }
    assert info["train"]["size"] == 45
    assert plain.class_names == ["0", "1", "2", "3"] and plain.image_shape == (7, 7, 1)


def test_idx_single_images_file_uses_labels_file_next_to_it(tmp_path: Path) -> None:
    _write_mnist_dir(tmp_path, gz=True)
    data = load_image_data(f"idx:{tmp_path / 't10k-images-idx3-ubyte.gz'}")
    assert sum(len(s) for s in data.splits.values()) == 20
    assert data.split_info["splits"]["test"]["of"] == "whole dataset"


def test_idx_folder_with_only_t10k_files_is_split_by_the_seeded_splitter(tmp_path: Path) -> None:
    x, y = _write_mnist_dir(tmp_path, gz=False, n_train=0, n_test=40)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / name).unlink()
    data = load_image_data(f"idx:{tmp_path}", validation_split=0.1, test_split=0.25)
    info = data.split_info
    assert [info["splits"][k]["size"] for k in ("train", "validation", "test")] == [26, 4, 10]
    assert {info["splits"][k]["of"] for k in ("train", "validation", "test")} == {"whole dataset"}
    assert info["stratified"] is True
    assert info["splits"]["test"]["class_counts"] == {"0": 3, "1": 3, "2": 2, "3": 2}
    assert any("only the t10k (test) files" in note for note in info["notes"])
    assert "only the t10k (test) files" in describe(data)
    ids = np.concatenate([data.splits[k].images[:, 0, 0, 0] for k in data.splits])
    assert sorted(ids) == sorted(x[:, 0, 0])  # every t10k image used exactly once


def test_read_idx_parses_header(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(array))
    assert np.array_equal(read_idx(tmp_path / "a"), array)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x02ab", "bad magic number"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x02ab", "data type 0x0d is not supported"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (_idx_bytes(np.zeros((3, 2, 2)))[:-1], r"promises 12 bytes .* holds 11"),
    ],
)
def test_read_idx_rejects_damaged_files(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "f").write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_idx(tmp_path / "f")


def test_idx_truncated_gzip_is_user_error(tmp_path: Path) -> None:
    _write_mnist_dir(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(UserError, match="cannot read IDX file"):
        load_image_data(f"idx:{tmp_path}")


def test_idx_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_image_data(f"idx:{tmp_path / 'missing'}")
    with pytest.raises(UserError, match="holds no train-images-idx3-ubyte"):
        load_image_data(f"idx:{tmp_path}")
    x, y = _toy(10)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(x))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(y[:9]))
    with pytest.raises(UserError, match="10 images but .* 9 labels"):
        load_image_data(f"idx:{tmp_path}")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(y))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(x))
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte without its partner"):
        load_image_data(f"idx:{tmp_path}")
    (tmp_path / "other-images-idx3-ubyte").write_bytes(_idx_bytes(x))
    with pytest.raises(UserError, match="labels file .*other-labels-idx1-ubyte .* does not exist"):
        load_image_data(f"idx:{tmp_path / 'other-images-idx3-ubyte'}")
