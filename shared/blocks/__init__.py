"""Reusable Keras 3 layers shared by every domain's models.

Each layer is registered as serializable under the "deepfield" package, so models
built from them save to `.keras` and load back with `safe_mode=True`.
"""

from shared.blocks.auxiliary_loss import AuxiliaryLoss
from shared.blocks.bernoulli_rbm import BernoulliRBM
from shared.blocks.capsule_routing import CapsuleRouting
from shared.blocks.conv_norm_act import ConvNormAct
from shared.blocks.feature_pyramid import FeaturePyramid
from shared.blocks.learned_constant import LearnedConstant
from shared.blocks.modulated_conv2d import ModulatedConv2D
from shared.blocks.multi_head_self_attention import MultiHeadSelfAttention
from shared.blocks.noise_injection import NoiseInjection
from shared.blocks.position_embedding import PositionEmbedding
from shared.blocks.primary_capsules import PrimaryCapsules
from shared.blocks.recurrent_stack import RecurrentStack
from shared.blocks.residual_basic_block import ResidualBasicBlock
from shared.blocks.residual_bottleneck_block import ResidualBottleneckBlock
from shared.blocks.reversible_embedding import ReversibleEmbedding
from shared.blocks.sinusoidal_position_embedding import SinusoidalPositionEmbedding
from shared.blocks.text_standardize import lower_and_split_punctuation
from shared.blocks.transformer_decoder_block import TransformerDecoderBlock
from shared.blocks.transformer_encoder_block import TransformerEncoderBlock
from shared.blocks.unet_decoder_block import UNetDecoderBlock
from shared.blocks.unet_encoder_block import UNetEncoderBlock
from shared.blocks.vae_sampling import VAESampling
from shared.blocks.vgg_block import VGGBlock

__all__ = [
    "lower_and_split_punctuation",
    "AuxiliaryLoss",
    "BernoulliRBM",
    "CapsuleRouting",
    "ConvNormAct",
    "FeaturePyramid",
    "LearnedConstant",
    "ModulatedConv2D",
    "MultiHeadSelfAttention",
    "NoiseInjection",
    "PositionEmbedding",
    "PrimaryCapsules",
    "RecurrentStack",
    "ResidualBasicBlock",
    "ResidualBottleneckBlock",
    "ReversibleEmbedding",
    "SinusoidalPositionEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "UNetDecoderBlock",
    "UNetEncoderBlock",
    "VAESampling",
    "VGGBlock",
]
