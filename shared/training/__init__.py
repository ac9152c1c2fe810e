"""Training machinery shared by every domain.

`settings` (the config sections) imports no TensorFlow, so configs validate fast;
`trainer` and `distributed_loop` hold the training itself.
"""

from shared.training.settings import RuntimeConfig, TrainConfig

__all__ = ["RuntimeConfig", "TrainConfig"]
