"""Reusable Keras 3 layers shared by every domain's models.

Each layer is registered as serializable under the "deepfield" package, so models
built from them save to `.keras` and load back with `safe_mode=True`.
"""

from shared.blocks.conv_norm_act import ConvNormAct
from shared.blocks.residual_basic_block import ResidualBasicBlock
from shared.blocks.residual_bottleneck_block import ResidualBottleneckBlock

__all__ = ["ConvNormAct", "ResidualBasicBlock", "ResidualBottleneckBlock"]
