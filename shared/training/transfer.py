"""Transfer learning from a finished run: `--init-from RUN` for the image domains.

The backbone weights of a trained zoo classifier are copied into a new model of the same
architecture; the head then learns on the frozen backbone for `head_epochs` and
everything fine-tunes at `fine_tune_learning_rate` for `train.epochs`, each phase with
its own checkpoints so a killed run resumes in the phase it was in. Keras has this
pattern only as a guide (keras.io "Transfer learning & fine-tuning"), not as a function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from shared.config import ConfigModel
from shared.errors import UserError
from shared.run_dir import RunDir
from shared.training.settings import TrainConfig


class TransferConfig(ConfigModel):
    """`--init-from RUN`: start from a trained run's backbone."""

    init_from: str | None = None
    head_epochs: int = Field(3, ge=0, description="epochs with the backbone frozen")
    fine_tune_learning_rate: float = Field(1e-4, gt=0)


def load_backbone_from(source: str, model) -> RunDir:
    """Copy a trained run's backbone weights into `model` (same architecture needed)."""
    from shared import model_io

    run = RunDir.open(source)
    trained = model_io.load_model(run.model_path)
    try:
        donor = trained.get_layer("backbone")
    except ValueError:
        raise UserError(f"run {run.path} has no zoo backbone to transfer") from None
    target = model.get_layer("backbone")
    donor_shapes = [tuple(w.shape) for w in donor.weights]
    target_shapes = [tuple(w.shape) for w in target.weights]
    if donor_shapes != target_shapes:
        raise UserError(
            f"--init-from {run.path}: its backbone does not match this model "
            f"({len(donor_shapes)} vs {len(target_shapes)} weights, or different shapes); "
            "use the same model.name, options and image channels"
        )
    target.set_weights(donor.get_weights())
    return run


# fit_phase(train_config, epochs, initial_epoch=0, checkpoint_dir=None): compile and fit.
FitPhase = Callable[..., Any]


def fit_transfer(
    model, transfer: TransferConfig, train: TrainConfig, run: RunDir, fit_phase: FitPhase
) -> RunDir:
    """Initialise `model`'s backbone from `transfer.init_from`, train the head on the
    frozen backbone, then fine-tune everything at the lower rate. Returns the source run."""
    source = load_backbone_from(str(transfer.init_from), model)
    head = transfer.head_epochs
    if head:
        model.get_layer("backbone").trainable = False
        fit_phase(train, head, checkpoint_dir=Path(run.checkpoints) / "head")
        model.get_layer("backbone").trainable = True
    fine_tune = train.model_copy(update={"learning_rate": transfer.fine_tune_learning_rate})
    fit_phase(
        fine_tune,
        head + train.epochs,
        initial_epoch=head,
        checkpoint_dir=Path(run.checkpoints) / "fine_tune",
    )
    return source
