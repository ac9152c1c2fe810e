"""Training machinery shared by every domain: settings, runtime set-up and the trainer."""

from shared.training.settings import RuntimeConfig, TrainConfig
from shared.training.trainer import fit, make_optimizer, setup_runtime

__all__ = ["RuntimeConfig", "TrainConfig", "fit", "make_optimizer", "setup_runtime"]
