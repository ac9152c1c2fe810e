"""EpochCheckpoint: a save per epoch, the last two kept, and a resume that continues."""

import keras
import numpy as np

from shared.training.checkpoints import EpochCheckpoint, read_metadata


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


def test_saves_each_epoch_prunes_and_resumes(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    first = _model()
    first.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[EpochCheckpoint(tmp_path)])
    names = sorted(p.name for p in tmp_path.glob("epoch-*"))
    assert names == ["epoch-0002.npz", "epoch-0003.npz"]
    assert read_metadata(tmp_path) == {"epoch": 3, "checkpoint": "epoch-0003.npz"}
    assert not list(tmp_path.glob(".epoch-*")), "no temporary files left behind"

    again = _model()
    history = again.fit(
        x, y, epochs=4, batch_size=8, verbose=0, callbacks=[EpochCheckpoint(tmp_path)]
    )
    assert history.epoch == [3]  # only the missing epoch ran
    assert int(again.optimizer.iterations.numpy()) == 4 * 4  # 3 restored epochs + 1, 4 steps each
    assert read_metadata(tmp_path)["epoch"] == 4


def test_restore_reproduces_weights_and_batchnorm_statistics(tmp_path):
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
    y = (x[:, 1] > 0).astype("int32")
    trained = _model()
    trained.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[EpochCheckpoint(tmp_path)])
    fresh = _model()
    fresh.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[EpochCheckpoint(tmp_path)])
    np.testing.assert_allclose(
        fresh.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-6
    )


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    import pytest

    x = np.zeros((8, 4), "float32")
    y = np.zeros(8, "int32")
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[EpochCheckpoint(tmp_path)])
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    other.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="different model"):
        other.fit(x, y, epochs=2, verbose=0, callbacks=[EpochCheckpoint(tmp_path)])


def test_ema_weights_end_training_and_survive_a_resume(tmp_path):
    """`train.ema`: the optimizer keeps a moving average of the weights, fit ends with it,
    and a resumed run restores the average with the rest of the optimizer state."""
    from shared.training.settings import TrainConfig
    from shared.training.trainer import make_optimizer

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    config = TrainConfig(optimizer="adam", learning_rate=0.05, ema=0.5)
    assert not make_optimizer(TrainConfig(), 4).use_ema

    def fit(epochs: int) -> keras.Model:
        model = _model()
        optimizer = make_optimizer(config, 4)
        assert optimizer.use_ema and optimizer.ema_momentum == 0.5
        model.compile(optimizer, "sparse_categorical_crossentropy")
        model.fit(
            x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[EpochCheckpoint(tmp_path)]
        )
        return model

    model = fit(2)
    averages = [v.numpy() for v in model.optimizer._model_variables_moving_average]
    for weight, average in zip(model.trainable_weights, averages, strict=True):
        np.testing.assert_allclose(weight.numpy(), average, atol=1e-6)
    resumed = fit(3)
    assert int(resumed.optimizer.iterations.numpy()) == 3 * 4
    assert read_metadata(tmp_path)["epoch"] == 3
