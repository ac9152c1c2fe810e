"""`pipelines.<domain>.load_data`: the data a `train` with the same arguments reads, split
as it splits it, without training.

The fast tests check the split sizes the runs of these configs record (the figures in
their data_splits.json: digits 1258/180/359, SMS spam 3902/557/1115, German credit
600/200/200, BreastMNIST's shipped 546/78/156), that no split leaks into another, that
the keywords resolve as `train`'s do, and that bad input is a UserError. The large test
compares every domain's load_data with a trained run's data_splits.json.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import pipelines
from domains.nlp.data import normalise
from shared.errors import UserError


def sizes(data) -> dict[str, int]:
    return {name: len(rows) for name, rows in data.splits.items()}


def test_vision_digits_splits_as_train_does():
    data = pipelines.vision.load_data("digits")
    assert data.spec == "builtin:digits" and data.num_classes == 10
    assert sizes(data) == {"train": 1258, "validation": 180, "test": 359}
    assert data.split_info["seed"] == 42 and data.split_info["stratified"] is True
    assert "train 1258, validation 180, test 359" in data.summary()
    assert repr(data).startswith("ImageData('builtin:digits', 10 classes, 8x8x1")
    # The same keywords as train: a seed moves the split, not its sizes; a --set is honoured.
    other = pipelines.vision.load_data(data="builtin:digits", overrides=["data.test_split=0.3"])
    assert sizes(other)["test"] == 539
    reseeded = pipelines.vision.load_data("digits", seed=1, epochs=3)
    assert sizes(reseeded) == sizes(data)
    assert not np.array_equal(reseeded.splits["test"].labels, data.splits["test"].labels)


def test_nlp_sms_spam_keeps_repeated_texts_in_one_split():
    data = pipelines.nlp.load_data(data="builtin:sms-spam")
    assert sizes(data) == {"train": 3902, "validation": 557, "test": 1115}
    assert data.report["duplicates"]["across_splits"] == 0
    frame = data.dataframe()
    assert list(frame.columns) == ["text", "label", "split"] and len(frame) == 5574
    assert frame["split"].value_counts().to_dict() == sizes(data)
    seen = {name: {normalise(t) for t in part["text"]} for name, part in frame.groupby("split")}
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["validation"])
    assert len(data.dataframe("test")) == 1115 and "spam 13.4%" in data.summary()
    with pytest.raises(UserError, match="no split 'val'"):
        data.dataframe("val")


def test_finance_credit_is_stratified_and_a_dataframe():
    data = pipelines.finance.load_data("credit")
    assert sizes(data) == {"train": 600, "validation": 200, "test": 200}
    assert [data.labels[rows].mean() for rows in data.splits.values()] == [0.3, 0.3, 0.3]
    frame = data.dataframe("train")
    assert len(frame) == 600 and frame["default"].mean() == 0.3 and set(frame["split"]) == {"train"}
    assert set(data.schema.features) <= set(frame.columns)
    assert "600 rows, 30.00% positive" in data.summary()


def test_healthcare_breastmnist_keeps_its_shipped_splits():
    data = pipelines.healthcare.load_data()
    assert data.class_names == ["malignant", "normal_or_benign"] and data.image_shape == (28, 28, 1)
    assert sizes(data) == {"train": 546, "validation": 78, "test": 156}
    assert {s["origin"] for s in data.split_info["splits"].values()} == {"shipped"}
    segment = pipelines.healthcare.load_data(task="segment", overrides=["segment.phantom_cases=10"])
    ids = {name: {case.id for case in cases} for name, cases in segment.splits.items()}
    assert sum(map(len, ids.values())) == 10 and not (ids["train"] & ids["test"])
    assert "labels background, liver" in segment.summary()


@pytest.mark.parametrize(
    ("domain", "kwargs", "message"),
    [
        ("vision", {"data": "csv:x.csv"}, "vision does not read csv"),
        ("nlp", {"data": "builtin:nope"}, "unknown builtin nlp data 'nope'"),
        ("finance", {"data": "folder:/no/such/folder"}, "does not read folder"),
        ("healthcare", {"data": "npz:/no/such/file.npz"}, "does not exist"),
        ("vision", {"config": "digits", "bogus": 1}, "has no option 'bogus'"),
        ("rl", {"config": "cartpole_ppo"}, r"rl has no data set.*gymnasium.make\('CartPole-v1'\)"),
    ],
)
def test_bad_input_is_a_user_error(domain, kwargs, message):
    with pytest.raises(UserError, match=message):
        getattr(pipelines, domain).load_data(**kwargs)


# Every domain's tiny run is trained once per session by the harness (tests/harness).
@pytest.mark.large
@pytest.mark.parametrize("name", ["vision", "nlp", "healthcare", "finance", "driving"])
def test_load_data_splits_are_the_ones_the_run_recorded(name, domain_run):
    from tests.harness.tiny import tiny

    settings = tiny(name)
    run = domain_run(name)
    data = getattr(pipelines, name).load_data(
        settings.config, settings.data, settings.overrides, task=settings.task
    )
    recorded = json.loads((run.path / "data_splits.json").read_text())["splits"]
    assert sizes(data) == {split: part["size"] for split, part in recorded.items()}
