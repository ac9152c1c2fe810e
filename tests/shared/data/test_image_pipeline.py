"""image_dataset: batches, pixel scale, shuffling, caching, augmentation and sharding."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from shared.data import build_augmentation, image_dataset, load_image_data
from shared.errors import UserError


@pytest.fixture(scope="module")
def digits():
    return load_image_data("builtin:digits")


@pytest.fixture(scope="module")
def folder_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        (root / name).mkdir()
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
                root / name / f"{i}.png"
            )
    return load_image_data(f"folder:{root}", image_size=(8, 8))


def _collect(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def _sorted_rows(images: np.ndarray) -> np.ndarray:
    """Images flattened and sorted, to compare two orderings of the same examples."""
    flat = images.reshape(len(images), -1)
    return flat[np.lexsort(flat.T)]


def test_batches_are_float_0_255_and_int_labels(digits) -> None:
    ds = image_dataset(digits, "train", 100)
    assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].dtype == tf.int32
    batches = list(ds)
    assert [len(y) for _, y in batches] == [100] * 12 + [58]
    images, labels = _collect(ds)
    assert images.shape == (1258, 8, 8, 1)
    assert images.min() == 0.0 and images.max() == 255.0  # not normalised
    # without shuffle, order and values equal the split's arrays
    ref_x, ref_y = digits.splits["train"].arrays()
    assert np.array_equal(images, ref_x.astype(np.float32)) and np.array_equal(labels, ref_y)


def test_drop_remainder_and_repeat(digits) -> None:
    ds = image_dataset(digits, "test", 100, drop_remainder=True)
    assert [len(y) for _, y in ds] == [100, 100, 100]
    assert ds.element_spec[0].shape.as_list() == [100, 8, 8, 1]
    repeated = image_dataset(digits, "validation", 64, repeat=True)
    assert sum(len(y) for _, y in repeated.take(10)) == 640  # more than the 180 in one epoch


def test_shuffle_is_seeded_and_reshuffles_each_epoch(digits) -> None:
    def first_epochs(seed: int) -> list[np.ndarray]:
        ds = image_dataset(digits, "validation", 180, shuffle=True, seed=seed, repeat=True)
        return [y.numpy() for _, y in ds.take(2)]

    a, b, c = first_epochs(1), first_epochs(1), first_epochs(2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])  # new order each epoch
    assert sorted(a[0]) == sorted(digits.splits["validation"].labels)  # same examples


@pytest.mark.parametrize("cache", [True, False])
def test_folder_pipeline_decodes_lazily_same_with_or_without_cache(folder_data, cache) -> None:
    ref_x, ref_y = folder_data.splits["train"].arrays()
    images, labels = _collect(image_dataset(folder_data, "train", 16, cache=cache))
    assert images.shape == (len(folder_data.splits["train"]), 8, 8, 3)
    assert np.array_equal(images, ref_x.astype(np.float32)) and np.array_equal(labels, ref_y)
    shuffled_x, shuffled_y = _collect(
        image_dataset(folder_data, "train", 16, shuffle=True, seed=3, cache=cache)
    )
    assert not np.array_equal(shuffled_y, ref_y)
    assert np.array_equal(_sorted_rows(shuffled_x), _sorted_rows(ref_x.astype(np.float32)))


def test_augmentation_changes_pixels_not_shapes(digits) -> None:
    plain = next(iter(image_dataset(digits, "train", 32)))[0].numpy()
    augment = build_augmentation({"translate": 0.2, "rotate": 0.1}, seed=0)
    augmented, labels = next(iter(image_dataset(digits, "train", 32, augment=augment)))
    assert augmented.shape == plain.shape and augmented.dtype == tf.float32
    assert labels.shape == (32,)
    assert not np.allclose(augmented.numpy(), plain)
    assert augmented.numpy().min() >= 0.0 and augmented.numpy().max() <= 255.0 + 1e-3


def test_input_context_shards_and_uses_per_replica_batch(digits) -> None:
    context = tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2
    )
    _, labels = _collect(image_dataset(digits, "test", 64, input_context=context))
    batches = [len(y) for _, y in image_dataset(digits, "test", 64, input_context=context)]
    assert batches[0] == 32  # global batch 64 over 2 replicas
    assert np.array_equal(labels, digits.splits["test"].labels[1::2])


def test_bad_arguments_are_user_errors(digits) -> None:
    with pytest.raises(UserError, match="unknown split 'valid'"):
        image_dataset(digits, "valid", 8)
    with pytest.raises(UserError, match="batch_size must be at least 1"):
        image_dataset(digits, "train", 0)


def test_split_arrays_limit(folder_data) -> None:
    images, labels = folder_data.splits["validation"].arrays(limit=3)
    assert images.shape == (3, 8, 8, 3) and labels.shape == (3,)
