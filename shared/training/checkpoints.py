"""Per-epoch resume checkpoints: weights, optimizer state and the epoch counter.

Keras's `BackupAndRestore` does this job through `save_weights` (.h5), which holds up
training for about 110 ms per epoch even for a small CNN on this machine (mostly Python
walking the layers), and `tf.train.Checkpoint` still about 45 ms. That pause was most of
the trainer's per-epoch overhead against plain `fit`. So this callback keeps
BackupAndRestore's contract (restore in `on_train_begin`, resume at the saved epoch via
`model._initial_epoch`) but only snapshots the variables to host memory on the training
thread (a few ms) and writes them in a background thread.

A save writes `epoch-NNNN.npz` aside, renames it into place, and only then points
`training_metadata.json` at it (also renamed into place), so a kill at any moment
leaves the previous checkpoint usable. Writes finish before `fit` returns.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import keras
import numpy as np

from shared.run_dir import write_atomic, write_json

METADATA = "training_metadata.json"


def read_metadata(folder: Path) -> dict | None:
    try:
        meta = json.loads((Path(folder) / METADATA).read_text())
        return meta if isinstance(meta.get("epoch"), int) else None
    except (OSError, ValueError, AttributeError):
        return None


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the training state after every epoch; restore it when training starts."""

    def __init__(self, folder: str | Path, keep: int = 2):
        super().__init__()
        self.folder = Path(folder)
        self.keep = keep
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def _variables(self) -> tuple[list, list]:
        optimizer = self.model.optimizer
        return list(self.model.weights), list(optimizer.variables) if optimizer else []

    # === Restore ===
    def on_train_begin(self, logs=None):
        meta = read_metadata(self.folder)
        if meta is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        with np.load(self.folder / meta["checkpoint"]) as saved:
            for prefix, variables in zip("mo", self._variables(), strict=True):
                arrays = [saved[f"{prefix}{i}"] for i in range(int(saved[f"{prefix}_count"]))]
                shapes = [tuple(v.shape) for v in variables]
                if [a.shape for a in arrays] != shapes:
                    raise ValueError(
                        f"checkpoint {meta['checkpoint']} in {self.folder} was written by a "
                        "different model or optimizer; it cannot be resumed here"
                    )
                for variable, array in zip(variables, arrays, strict=True):
                    variable.assign(array)
        self.model._initial_epoch = meta["epoch"]

    # === Save ===
    def on_epoch_end(self, epoch, logs=None):
        self._wait()
        model_vars, optimizer_vars = self._variables()
        arrays = {f"m{i}": np.asarray(v.numpy()) for i, v in enumerate(model_vars)}
        arrays.update({f"o{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer_vars)})
        arrays.update(m_count=np.array(len(model_vars)), o_count=np.array(len(optimizer_vars)))
        self._writer = threading.Thread(
            target=self._write, args=(epoch + 1, arrays), name="epoch-checkpoint", daemon=True
        )
        self._writer.start()

    def on_train_end(self, logs=None):
        self._wait()

    def _wait(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"writing a checkpoint to {self.folder} failed") from error

    def _write(self, epoch: int, arrays: dict[str, np.ndarray]) -> None:
        try:
            name = f"epoch-{epoch:04d}.npz"
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            write_atomic(self.folder / name, buffer.getvalue())
            write_json(self.folder / METADATA, {"epoch": epoch, "checkpoint": name})
            stale = sorted(p for p in self.folder.glob("epoch-*.npz") if p.name != name)
            for path in stale[: max(0, len(stale) - (self.keep - 1))]:
                path.unlink(missing_ok=True)
        except BaseException as error:  # noqa: BLE001 - re-raised on the training thread
            self._error = error
