"""A small trained digits run, shared by the vision tests that need a finished run."""

import pytest

# Two quick epochs of a narrow CNN: enough to beat chance clearly, fast on 2 cores.
FAST_OVERRIDES = [
    "train.epochs=2",
    "train.batch_size=64",
    "train.learning_rate=0.01",
    "train.warmup_epochs=0",
    "model.filters=[8, 16]",
]
FAST = [arg for item in FAST_OVERRIDES for arg in ("--set", item)]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    from pipelines import vision

    path = tmp_path_factory.mktemp("runs") / "digits"
    return vision.train(config="digits", overrides=FAST_OVERRIDES, run_dir=path)
