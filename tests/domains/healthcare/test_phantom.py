"""The CT phantom: seeded, exact masks, plausible Hounsfield units, fast."""

from __future__ import annotations

import time

import numpy as np
import pytest

from domains.healthcare.phantom import (
    KIDNEY,
    LABEL_NAMES,
    LESION,
    LIVER,
    SPLEEN,
    TISSUE_HU,
    phantom_classification,
    phantom_dataset,
    phantom_slice,
    phantom_volume,
)


def test_label_names() -> None:
    assert LABEL_NAMES == ["background", "liver", "kidney", "spleen", "lesion"]
    assert (LIVER, KIDNEY, SPLEEN, LESION) == (1, 2, 3, 4)


@pytest.mark.parametrize("make", [phantom_slice, phantom_volume])
def test_same_seed_same_arrays_different_seed_different(make) -> None:
    image, mask, spacing = make(7)
    again, again_mask, again_spacing = make(7)
    assert np.array_equal(image, again) and np.array_equal(mask, again_mask)
    assert spacing == again_spacing
    other, other_mask, _ = make(8)
    assert not np.array_equal(image, other)
    assert not np.array_equal(mask, other_mask)


def test_shapes_dtypes_and_default_spacing() -> None:
    image, mask, spacing = phantom_volume(0)
    assert image.shape == mask.shape == (64, 64, 32)
    assert image.dtype == np.float32 and mask.dtype == np.uint8
    assert spacing == (6.0, 6.0, 8.0)
    image, mask, spacing = phantom_slice(0, shape=(96, 80), spacing=(0.5, 0.7))
    assert image.shape == mask.shape == (96, 80)
    assert spacing == (0.5, 0.7)


@pytest.mark.parametrize(
    ("make", "seeds"), [(phantom_slice, range(12)), (phantom_volume, range(4))]
)
def test_every_organ_present_and_labels_in_range(make, seeds) -> None:
    for seed in seeds:
        _, mask, _ = make(seed)
        assert mask.max() < len(LABEL_NAMES)
        for label in (LIVER, KIDNEY, SPLEEN):
            assert (mask == label).sum() > 20, (seed, LABEL_NAMES[label])


@pytest.mark.parametrize("make", [phantom_slice, phantom_volume])
def test_lesions_lie_inside_the_liver_before_the_override(make) -> None:
    # The anatomy is drawn before the lesions, so with a fixed lesion count the
    # lesion-free case shows the liver region the lesions were painted over.
    for seed in range(3):
        _, plain, _ = make(seed, num_lesions=0)
        _, with_lesions, _ = make(seed, num_lesions=3)
        lesion = with_lesions == LESION
        assert lesion.any()
        assert np.all(plain[lesion] == LIVER)
        assert np.array_equal(np.where(lesion, LIVER, with_lesions), plain)
        assert not (plain == LESION).any()


def test_hounsfield_units_are_plausible() -> None:
    image, mask, _ = phantom_volume(3, num_lesions=2)
    corner = image[:4, :4, :]  # air, outside the body
    assert abs(float(corner.mean()) + 1000) < 10
    for label in (LIVER, KIDNEY, SPLEEN, LESION):
        assert image[mask == label].min() > -200  # inside the body: not air
    means = {label: float(image[mask == label].mean()) for label in (LIVER, KIDNEY, LESION)}
    assert TISSUE_HU["liver"][0] - 15 < means[LIVER] < TISSUE_HU["liver"][1] + 15
    assert means[KIDNEY] > means[LIVER] + 30  # contrast a small network can learn
    assert means[LESION] < means[LIVER] - 40  # hypodense lesions
    noise = float(image[mask == LIVER].std())
    assert 5 < noise < 40


def test_blur_changes_the_image_not_the_mask() -> None:
    sharp, sharp_mask, _ = phantom_slice(5, blur=0.0, noise_sigma=0.0, inhomogeneity=False)
    blurred, blurred_mask, _ = phantom_slice(5, blur=1.0, noise_sigma=0.0, inhomogeneity=False)
    assert np.array_equal(sharp_mask, blurred_mask)
    assert not np.allclose(sharp, blurred)
    # Without noise, blur or inhomogeneity every organ is one exact HU value.
    assert np.unique(sharp[sharp_mask == LIVER]).size == 1


def test_dataset_cases_do_not_depend_on_n() -> None:
    images, masks, spacing, names = phantom_dataset(3, seed=11, dims=2, shape=(64, 64))
    assert images.shape == masks.shape == (3, 64, 64)
    assert spacing == (6.0, 6.0) and names == LABEL_NAMES
    more, more_masks, _, _ = phantom_dataset(5, seed=11, dims=2, shape=(64, 64))
    assert np.array_equal(images, more[:3]) and np.array_equal(masks, more_masks[:3])
    assert not np.array_equal(images[0], images[1])
    volumes, _, spacing3d, _ = phantom_dataset(1, seed=0, dims=3, shape=(32, 32, 16))
    assert volumes.shape == (1, 32, 32, 16) and spacing3d == (12.0, 12.0, 16.0)


def test_classification_is_balanced_and_labels_match_masks() -> None:
    images, labels = phantom_classification(40, seed=2, dims=2, shape=(64, 64))
    assert images.shape == (40, 64, 64) and images.dtype == np.float32
    assert labels.dtype == np.int32 and labels.sum() == 20
    again, again_labels = phantom_classification(40, seed=2, dims=2, shape=(64, 64))
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)
    # Rebuild each case's first draw: where it is the image kept, its mask agrees.
    checked = 0
    for i, label in enumerate(labels):
        count = int(np.random.default_rng([2, i, 0]).integers(1, 4)) if label else 0
        image, mask, _ = phantom_slice([2, i, 0], (64, 64), num_lesions=count)
        if np.array_equal(image, images[i]):
            checked += 1
            assert bool((mask == LESION).any()) == bool(label), i
    assert checked >= 35


def test_generation_is_fast() -> None:
    best_3d = min(_seconds(lambda s: phantom_volume(s)) for _ in range(3))
    best_2d = min(_seconds(lambda s: phantom_slice(s)) for _ in range(3))
    assert best_3d < 0.5  # ~10 ms on a 2-core machine
    assert best_2d < 0.05  # ~2 ms


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn(int(start * 1e6) % 1000)
    return time.perf_counter() - start
