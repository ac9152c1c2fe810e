"""The tfds source, on tfds mock data (no downloads)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from shared.data import image_dataset, load_image_data
from shared.data.sources import tfds as tfds_source
from shared.errors import UserError


@pytest.fixture
def mock_mnist():
    with tfds.testing.mock_data(num_examples=20):
        yield


def test_tfds_shipped_splits_in_memory(mock_mnist) -> None:
    data = load_image_data("tfds:mnist")
    assert data.class_names == [str(i) for i in range(10)]
    assert data.image_shape == (28, 28, 1)
    info = data.split_info["splits"]
    # mock data carry no split metadata, so every standard split counts as shipped
    assert {k: (v["origin"], v["size"]) for k, v in info.items()} == {
        k: ("shipped", 20) for k in ("train", "validation", "test")
    }
    images, labels = data.splits["train"].arrays()
    assert data.splits["train"].kind == "arrays"
    assert images.shape == (20, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < 10


def test_tfds_named_split_derives_the_others(mock_mnist) -> None:
    data = load_image_data("tfds:mnist:train", image_size=(14, 14), color_mode="rgb")
    assert data.image_shape == (14, 14, 3)
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sizes == {"train": 14, "validation": 2, "test": 4}
    assert data.split_info["splits"]["test"]["origin"] == "seeded fraction"
    assert data.splits["test"].arrays()[0].shape == (4, 14, 14, 3)


def test_tfds_large_data_are_streamed(mock_mnist, monkeypatch) -> None:
    monkeypatch.setattr(tfds_source, "TFDS_IN_MEMORY_LIMIT_BYTES", 0)
    data = load_image_data("tfds:mnist:train")
    assert all(split.kind == "stream" for split in data.splits.values())
    info = data.split_info["splits"]
    assert info["validation"] == {
        "size": 2,
        "origin": "index slice",
        "tfds_split": "train[0:2]",
        "class_counts": None,
    }
    assert info["train"]["tfds_split"] == "train[6:]" and len(data.splits["train"]) == 14
    images, labels = next(iter(image_dataset(data, "test", 4, shuffle=True)))
    assert images.shape == (4, 28, 28, 1) and images.dtype.name == "float32"
    assert labels.dtype.name == "int32"


def test_unknown_tfds_name_suggests_close_matches() -> None:
    with pytest.raises(UserError, match="unknown tfds dataset 'mnistt'; close matches: .*mnist"):
        load_image_data("tfds:mnistt")


# A real (tiny, locally generated) tfds builder: split metadata and slicing behave as with
# downloaded datasets, which mock data do not model.
class DeepfieldTinyImages(tfds.core.GeneratorBasedBuilder):
    """30 train and 9 test 6x5 grey images; pixel value = example index, 3 classes."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(6, 5, 1)),
                    "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 30), "test": self._generate_examples(100, 9)}

    def _generate_examples(self, start: int, n: int):
        for i in range(start, start + n):
            yield i, {"image": np.full((6, 5, 1), i, np.uint8), "label": i % 3}


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFDS_DATA_DIR", str(tmp_path_factory.mktemp("tfds")))
        tfds.builder("deepfield_tiny_images").download_and_prepare()
        yield "tfds:deepfield_tiny_images"


def _pixel_ids(split) -> set[int]:
    return {int(image[0, 0, 0]) for image in split.arrays()[0]}


def test_tfds_metadata_splits_test_shipped_validation_derived(tiny_tfds) -> None:
    data = load_image_data(tiny_tfds)
    assert data.class_names == ["a", "b", "c"] and data.image_shape == (6, 5, 1)
    info = data.split_info["splits"]
    assert (info["test"]["origin"], info["test"]["size"]) == ("shipped", 9)
    assert (info["validation"]["origin"], info["validation"]["of"]) == (
        "seeded fraction",
        "shipped train",
    )
    assert [info[k]["size"] for k in ("train", "validation")] == [27, 3]
    assert info["validation"]["class_counts"] == {"a": 1, "b": 1, "c": 1}
    assert _pixel_ids(data.splits["test"]) == set(range(100, 109))
    train, val = _pixel_ids(data.splits["train"]), _pixel_ids(data.splits["validation"])
    assert train | val == set(range(30)) and not train & val


def test_tfds_streamed_slices_are_disjoint(tiny_tfds, monkeypatch) -> None:
    monkeypatch.setattr(tfds_source, "TFDS_IN_MEMORY_LIMIT_BYTES", 0)
    data = load_image_data(tiny_tfds)
    assert data.split_info["splits"]["validation"]["tfds_split"] == "train[0:3]"
    assert [len(data.splits[k]) for k in ("train", "validation", "test")] == [27, 3, 9]
    train, val = _pixel_ids(data.splits["train"]), _pixel_ids(data.splits["validation"])
    assert len(train) == 27 and len(val) == 3 and train | val == set(range(30))
    _, labels = next(iter(image_dataset(data, "train", 32, shuffle=True)))
    assert labels.shape == (27,)


def test_tfds_unknown_split_is_user_error(tiny_tfds) -> None:
    with pytest.raises(UserError, match="split 'valid': Unknown split"):
        load_image_data(f"{tiny_tfds}:valid")
