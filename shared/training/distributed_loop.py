"""A custom distributed training loop: `fit` for strategies where Keras's `fit` fails.

Keras 3's `model.fit` breaks under MultiWorkerMirroredStrategy (keras-team/keras#20585),
so multi-worker runs train here: `strategy.run` inside a `tf.function`, distributed
datasets, and cross-replica reductions, while driving the very callbacks the `fit` path
uses (`standard_callbacks`: history.csv, TensorBoard, log lines, early stopping and
`EpochCheckpoint`), so a run directory looks and resumes the same either way.

The loss is the gradient of the *global* batch mean, whatever the split: each replica
sums its per-example losses and divides by the number of examples in the whole global
step (an all-reduce, so a short last batch or an empty replica is counted right), and
regularisation losses are divided by the number of replicas, because the optimizer sums
gradients across replicas. On one replica this is exactly Keras's own loss.

Only the chief writes the run directory. Other workers run the same callbacks against
a scratch directory (deleted at the end), as TensorFlow's multi-worker guide does for
checkpoints, so every worker executes the same ops in the same order; before training
they copy the chief's resume checkpoint into that scratch directory, so all workers
restore the same epoch (the run directory must therefore be readable by every worker:
localhost, or shared storage such as GCS/NFS on a real cluster).
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from shared.distribute import is_chief, worker_index
from shared.run_dir import RunDir
from shared.training.settings import TrainConfig
from shared.training.trainer import (
    completed_epochs,
    progress_verbosity,
    standard_callbacks,
    trim_history,
)

LOG = logging.getLogger("deepfield.trainer")

Logs = dict[str, float]


def fit_distributed(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    *,
    strategy: tf.distribute.Strategy,
    run: RunDir,
    train: TrainConfig,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    monitor: str = "val_loss",
    verbose: int | None = None,
    initial_epoch: int = 0,
    checkpoint_dir: Path | None = None,
) -> keras.callbacks.History:
    """Train like `shared.training.trainer.fit`, with a loop that works on any strategy.

    `model` must have been built and compiled (one loss, any metrics) under
    `strategy.scope()`; `train_ds` and `val_ds` are batched at the GLOBAL batch size
    (each replica gets global / replicas). With `steps_per_epoch`, the data iterator
    carries on across epochs, as in `fit`. Returns the History of the epochs run here.
    """
    if model.distribute_strategy is not strategy:
        # Variables made outside the scope are not mirrored; strategy.run would fail later
        # with a far less helpful message.
        raise ValueError("build and compile the model under `strategy.scope()`")
    chief = is_chief()
    epochs = epochs or train.epochs
    steps_per_epoch = steps_per_epoch or train.steps_per_epoch
    verbose = progress_verbosity() if verbose is None else verbose
    scratch: Path | None = None
    if chief:
        done = completed_epochs(run)
        trim_history(run, done)
        if done > initial_epoch:
            LOG.info("resuming %s after epoch %d", run.path, done)
        callback_run = run
    else:
        scratch = Path(tempfile.mkdtemp(prefix=f"deepfield-worker{worker_index()}-"))
        callback_run = RunDir(scratch)
    if checkpoint_dir is not None:
        # A phase's own checkpoint folder, at the same place inside the scratch copy.
        checkpoint_dir = callback_run.checkpoints / Path(checkpoint_dir).relative_to(
            run.checkpoints
        )
    try:
        if scratch is not None:
            _copy_checkpoints(run, callback_run)
        return _train(
            model,
            train_ds,
            val_ds,
            strategy=strategy,
            callbacks=list(extra_callbacks or [])
            + standard_callbacks(
                callback_run,
                train,
                monitor=monitor,
                has_validation=val_ds is not None,
                checkpoint_dir=checkpoint_dir,
            ),
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            verbose=verbose if chief else 0,
            initial_epoch=initial_epoch,
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _train(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    *,
    strategy: tf.distribute.Strategy,
    callbacks: list[keras.callbacks.Callback],
    epochs: int,
    steps_per_epoch: int | None,
    verbose: int,
    initial_epoch: int = 0,
) -> keras.callbacks.History:
    """The epoch loop, in the order `Model.fit` calls its callbacks."""
    with strategy.scope():
        _build_training_state(model, train_ds)
    train_batches = _Batches(strategy, train_ds, steps_per_epoch)
    val_batches = _Batches(strategy, val_ds, None) if val_ds is not None else None
    steps = _Steps(model, strategy, train_batches, val_batches)

    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history],
        add_progbar=bool(verbose),
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=train_batches.steps,
    )
    model.stop_training = False
    # Keras keeps this on the model; only this run's EpochCheckpoint may set it.
    model._initial_epoch = None
    callback_list.on_train_begin()
    # EpochCheckpoint.on_train_begin restored the weights and set the epoch to resume.
    initial_epoch = int(getattr(model, "_initial_epoch", None) or initial_epoch)
    _check_workers_agree(strategy, initial_epoch)

    epoch_logs: Logs = {}
    training_logs: Logs | None = None
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        logs: Logs = {}
        for step, batch in enumerate(train_batches.epoch()):
            callback_list.on_train_batch_begin(step)
            logs = _to_floats(steps.train(batch))
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = dict(logs or _to_floats(steps.results()))
        if val_batches is not None:
            epoch_logs.update(_evaluate(model, steps, val_batches, callback_list))
        callback_list.on_epoch_end(epoch, epoch_logs)
        training_logs = epoch_logs
        if model.stop_training:
            break

    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
        with strategy.scope():
            model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=training_logs)
    return history


def _evaluate(
    model: keras.Model,
    steps: _Steps,
    batches: _Batches,
    callback_list: keras.callbacks.CallbackList,
) -> Logs:
    """One pass over the validation data, logged as `val_<metric>` like `fit` does."""
    model.reset_metrics()
    callback_list.on_test_begin()
    logs: Logs = {}
    for step, batch in enumerate(batches.epoch()):
        callback_list.on_test_batch_begin(step)
        logs = _to_floats(steps.test(batch))
        callback_list.on_test_batch_end(step, logs)
    logs = logs or _to_floats(steps.results())
    callback_list.on_test_end(logs)
    return {f"val_{name}": value for name, value in logs.items()}


# === Step functions ===


class _Steps:
    """The per-replica train and test steps, wrapped in `strategy.run` and `tf.function`.

    Each returns the model's metrics read in cross-replica context, which sums the
    replicas' metric states (they are on-read synchronised variables), so the logs are
    global and identical on every worker.
    """

    def __init__(
        self,
        model: keras.Model,
        strategy: tf.distribute.Strategy,
        train_batches: _Batches,
        val_batches: _Batches | None,
    ):
        self.model = model
        self.strategy = strategy
        self.per_example_loss = per_example_loss(model)
        self.loss_tracker = _loss_tracker(model)
        # Traced once from the datasets' specs (batch dimension unknown unless the data
        # drops remainders), so a short last batch reuses the graph instead of retracing.
        self.train = tf.function(self._train, input_signature=[train_batches.spec])
        self.test = (
            tf.function(self._test, input_signature=[val_batches.spec])
            if val_batches is not None
            else None
        )
        self.results = tf.function(self.model.get_metrics_result)

    def _train(self, batch: Any) -> dict[str, tf.Tensor]:
        self.strategy.run(self._replica_train, args=(batch,))
        return self.model.get_metrics_result()

    def _test(self, batch: Any) -> dict[str, tf.Tensor]:
        self.strategy.run(self._replica_test, args=(batch,))
        return self.model.get_metrics_result()

    def _replica_train(self, batch: Any) -> None:
        model = self.model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss, mean_loss = self._losses(y, y_pred, sample_weight)
            # Loss scaling for mixed precision (a no-op for other optimizers).
            scaled = model.optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        # Under a strategy, Keras optimizers sum the gradients across replicas here.
        model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self._update_metrics(x, y, y_pred, sample_weight, mean_loss)

    def _replica_test(self, batch: Any) -> None:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        y_pred = self.model(x, training=False)
        _, mean_loss = self._losses(y, y_pred, sample_weight)
        self._update_metrics(x, y, y_pred, sample_weight, mean_loss)

    def _losses(self, y: Any, y_pred: Any, sample_weight: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """(loss to differentiate on this replica, this replica's mean loss for the logs).

        The first sums to the global-batch mean loss over the replicas; the second is
        what Keras reports (data loss mean plus regularisation).
        """
        values = tf.cast(self.per_example_loss(y, y_pred, sample_weight), tf.float32)
        local_sum = tf.reduce_sum(values)
        local_count = tf.cast(tf.size(values), tf.float32)
        replica = tf.distribute.get_replica_context()
        global_count = replica.all_reduce(tf.distribute.ReduceOp.SUM, local_count)
        regularisation = (
            tf.add_n([tf.cast(tf.reduce_sum(v), tf.float32) for v in self.model.losses])
            if self.model.losses
            else tf.constant(0.0)
        )
        replicas = tf.cast(replica.num_replicas_in_sync, tf.float32)
        loss = tf.math.divide_no_nan(local_sum, global_count) + regularisation / replicas
        mean_loss = tf.math.divide_no_nan(local_sum, local_count) + regularisation
        return loss, mean_loss

    def _update_metrics(
        self, x: Any, y: Any, y_pred: Any, sample_weight: Any, mean_loss: tf.Tensor
    ) -> None:
        # Weighted by examples, as fit's loss tracker is, so the global mean is exact.
        examples = tf.shape(tf.nest.flatten(x)[0])[0]
        self.loss_tracker.update_state(mean_loss, sample_weight=examples)
        # Updates the compiled metrics ("accuracy", ...); its return value is this
        # replica's view only, so the logs are read after strategy.run instead.
        self.model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def per_example_loss(model: keras.Model) -> Callable[[Any, Any, Any], tf.Tensor]:
    """The compiled loss as a function returning one (weighted) value per example.

    Built from `model.loss` (a name, a function or a `keras.losses.Loss`) with its
    reduction turned off, so the loop can divide by the global batch size itself.
    """
    identifier = model.loss
    if identifier is None or isinstance(identifier, dict | list | tuple):
        raise ValueError(
            "fit_distributed trains models compiled with a single loss for a single "
            f"output; got loss={identifier!r}"
        )
    if isinstance(identifier, str) and identifier.lower() in ("crossentropy", "ce"):
        raise ValueError(
            f"loss={identifier!r} is ambiguous here; compile with the explicit loss name "
            "(e.g. 'sparse_categorical_crossentropy')"
        )
    loss = keras.losses.get(identifier) if isinstance(identifier, str) else identifier
    if isinstance(loss, keras.losses.Loss):
        # A copy, so the model's own compiled loss keeps its reduction.
        unreduced = copy.copy(loss)
        unreduced.reduction = "none"
    elif callable(loss):
        unreduced = _UnreducedLoss(loss)
    else:
        raise ValueError(f"cannot use loss={identifier!r} in fit_distributed")
    return unreduced


class _UnreducedLoss(keras.losses.Loss):
    """A plain loss function as a `Loss`, so sample weights and masks apply as in Keras."""

    def __init__(self, fn: Callable[[Any, Any], Any]):
        super().__init__(name=getattr(fn, "__name__", "loss"), reduction="none")
        self.fn = fn

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.fn(y_true, y_pred)


def _loss_tracker(model: keras.Model) -> keras.metrics.Metric:
    """The compiled model's `loss` metric (the one `fit` updates and logs as `loss`)."""
    for metric in model.metrics:
        if metric.name == "loss":
            return metric
    raise ValueError("compile the model before fit_distributed (no `loss` metric found)")


# === Data ===


class _Batches:
    """Per-epoch batches of a distributed dataset, iterated the way `fit` iterates.

    Without `steps_per_epoch` every epoch is one full pass. With it, the iterator
    carries on across epochs; running dry mid-epoch ends that epoch early (with fit's
    warning), and an iterator that is dry at the start of an epoch is restarted.
    """

    def __init__(
        self, strategy: tf.distribute.Strategy, dataset: tf.data.Dataset, steps: int | None
    ):
        self.dataset = strategy.experimental_distribute_dataset(_shard_by_example(dataset))
        self.spec = self.dataset.element_spec
        self.steps_per_epoch = steps
        cardinality = int(dataset.cardinality())
        self.steps = steps or (cardinality if cardinality > 0 else None)
        self._iterator: Any = None
        self._restarted = False  # the iterator was just restarted for being dry

    def epoch(self):
        if self.steps_per_epoch is None:
            yield from self.dataset
            return
        taken = 0
        while taken < self.steps_per_epoch:
            if self._iterator is None:
                self._iterator = iter(self.dataset)
            optional = self._iterator.get_next_as_optional()
            if not optional.has_value():
                self._iterator = None
                if taken == 0 and not self._restarted:
                    self._restarted = True
                    continue
                warnings.warn(
                    "Your input ran out of data; interrupting the epoch after "
                    f"{taken} of {self.steps_per_epoch} steps.",
                    stacklevel=2,
                )
                break
            self._restarted = False
            taken += 1
            yield optional.get_value()


def _shard_by_example(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard multi-worker input by example (DATA) unless the caller chose a policy.

    With DATA each worker takes its replicas' slices of every global batch, so a global
    step sees exactly the batch a single worker would (AUTO would shard by file, which
    changes the batches, and OFF would feed every worker the same data).
    """
    options = dataset.options().experimental_distribute
    if options.auto_shard_policy != tf.data.experimental.AutoShardPolicy.AUTO:
        return dataset
    chosen = tf.data.Options()
    chosen.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(chosen)


# === Set-up and agreement ===


def _build_training_state(model: keras.Model, dataset: tf.data.Dataset) -> None:
    """Create the metric and optimizer variables before training, as `fit` does.

    EpochCheckpoint loads optimizer state in on_train_begin, and variables must be
    created in cross-replica context (under the strategy's scope), not in a step.
    """
    if not model.built:
        raise ValueError("build the model (call it on a batch) before fit_distributed")
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:
        # Keras's own builder, from shapes only: no batch is read or computed.
        symbolic_build(data_batch=dataset.element_spec)
    elif model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _copy_checkpoints(run: RunDir, scratch: RunDir) -> None:
    """Give a non-chief worker the chief's resume checkpoint, to restore the same state."""
    if run.checkpoints.is_dir():
        shutil.copytree(run.checkpoints, scratch.checkpoints, dirs_exist_ok=True)


def _check_workers_agree(strategy: tf.distribute.Strategy, initial_epoch: int) -> None:
    """Fail on every worker, rather than hang, when workers would resume different epochs.

    That happens when non-chief workers cannot read the chief's checkpoints. All values
    are equal exactly when R * sum(v^2) == sum(v)^2 over the R replicas.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    value = tf.constant([float(initial_epoch), float(initial_epoch) ** 2])

    @tf.function
    def sums() -> tf.Tensor:
        def replica() -> tf.Tensor:
            return tf.distribute.get_replica_context().all_reduce("sum", value)

        return strategy.experimental_local_results(strategy.run(replica))[0]

    total, squares = (float(t) for t in sums().numpy())
    replicas = strategy.num_replicas_in_sync
    if abs(replicas * squares - total * total) > 1e-6:
        raise RuntimeError(
            f"workers disagree on the epoch to resume from (this one: {initial_epoch}, "
            f"mean: {total / replicas:g}); every worker must be able to read the run "
            "directory's checkpoints/ (shared storage on a real cluster)"
        )


def _to_floats(logs: dict[str, Any]) -> Logs:
    return {name: float(value) for name, value in logs.items()}
