"""Policy and value networks for reinforcement learning: an MLP and the Nature-DQN CNN.

Both follow the zoo contract `builder(input_shape, num_classes, *, options)`. Here
`num_classes` is the number of outputs of a linear head (actions for a Q-network or a
policy's logits); `None` returns the torso alone (its last hidden layer), which the RL
domain puts its own heads on (a value head, a Gaussian policy). `dueling=True` swaps
the linear head for Wang et al. (2016)'s value + advantage head.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from shared.errors import UserError
from shared.zoo.classifier import check_bool, check_choice, check_int
from shared.zoo.registry import register_model

ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu")


@keras.saving.register_keras_serializable(package="deepfield")
class DuelingHead(keras.layers.Layer):
    """Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) (Wang et al. 2016).

    Subtracting the mean advantage makes V and A identifiable, so the value stream
    learns from every action's update, not only the taken one's.
    """

    def __init__(self, num_actions: int, **kwargs):
        super().__init__(**kwargs)
        self.num_actions = int(num_actions)
        self.value = keras.layers.Dense(1, name="value")
        self.advantage = keras.layers.Dense(self.num_actions, name="advantage")

    def build(self, input_shape):
        self.value.build(input_shape)
        self.advantage.build(input_shape)

    def call(self, features):
        value = self.value(features)
        advantage = self.advantage(features)
        return value + advantage - keras.ops.mean(advantage, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_actions)

    def get_config(self):
        return {**super().get_config(), "num_actions": self.num_actions}


def _head(features, num_classes: int | None, dueling: bool):
    if num_classes is None:
        return features
    if dueling:
        return DuelingHead(num_classes, name="q_values")(features)
    return keras.layers.Dense(num_classes, name="outputs")(features)


@register_model("mlp", kind="policy", modality="observation", preset_input=(4,), preset_classes=2)
def mlp(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    hidden: Sequence[int] = (64, 64),
    activation: str = "tanh",
    dueling: bool = False,
) -> keras.Model:
    """Multi-layer perceptron for vector observations: Dense layers, then a linear head.

    The layers are a plain chain of Dense layers (after a Flatten for 2-D inputs such
    as highway-env's vehicle tables), so RL agents can run the forward pass in NumPy
    when acting, without a TensorFlow call per environment step.
    """
    # === Config ===
    if len(input_shape) > 2:
        raise UserError(
            f"mlp takes vector (or 2-D table) observations, got shape {tuple(input_shape)}; "
            "use nature_dqn for image frames"
        )
    if isinstance(hidden, int | str) or not isinstance(hidden, Sequence) or not hidden:
        raise UserError(f"option 'hidden' must be a non-empty list of integers, got {hidden!r}")
    hidden = [check_int("hidden", h) for h in hidden]
    activation = check_choice("activation", activation, ACTIVATIONS)
    dueling = check_bool("dueling", dueling)

    # === Functional Model ===
    observation = keras.Input(shape=tuple(input_shape), dtype="float32", name="observation")
    x = keras.layers.Flatten(name="flatten")(observation) if len(input_shape) == 2 else observation
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
    return keras.Model(observation, _head(x, num_classes, dueling), name="mlp")


@register_model(
    "nature_dqn", kind="policy", modality="observation", preset_input=(84, 84, 4), preset_classes=6
)
def nature_dqn(
    input_shape: tuple[int, int, int],
    num_classes: int | None,
    *,
    hidden: int = 512,
    dueling: bool = False,
) -> keras.Model:
    """The Nature-DQN CNN (Mnih et al. 2015): three convs and a 512-unit layer on stacked
    84x84 frames (raw 0..255 pixels, scaled inside the model).

    conv 32 8x8 /4, conv 64 4x4 /2, conv 64 3x3 /1, dense 512, all ReLU.
    """
    # === Config ===
    if len(input_shape) != 3:
        raise UserError(f"nature_dqn takes (height, width, frames) inputs, got {input_shape!r}")
    height, width, _ = input_shape
    if min(height, width) < 36:
        raise UserError(
            f"nature_dqn needs frames of at least 36x36 (its convs shrink 84 to 7), got "
            f"{height}x{width}"
        )
    hidden = check_int("hidden", hidden)
    dueling = check_bool("dueling", dueling)

    # === Functional Model ===
    frames = keras.Input(shape=tuple(input_shape), dtype="float32", name="observation")
    x = keras.layers.Rescaling(1.0 / 255, name="preprocess")(frames)
    for i, (filters, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
        x = keras.layers.Conv2D(filters, kernel, stride, activation="relu", name=f"conv_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="dense")(x)
    return keras.Model(frames, _head(x, num_classes, dueling), name="nature_dqn")


@keras.saving.register_keras_serializable(package="deepfield")
class PolicyLogStd(keras.layers.Layer):
    """A Gaussian policy's log standard deviation: one learned number per action
    dimension, independent of the state (as in PPO's and SB3's continuous policies),
    broadcast to the batch of its input."""

    def __init__(self, action_dim: int, initial: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.action_dim = int(action_dim)
        self.initial = float(initial)

    def build(self, input_shape):
        self.log_std = self.add_weight(
            shape=(self.action_dim,),
            initializer=keras.initializers.Constant(self.initial),
            name="log_std",
        )

    def call(self, features):
        zeros = keras.ops.zeros_like(features[..., :1])
        return zeros + keras.ops.cast(self.log_std, features.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.action_dim)

    def get_config(self):
        return {**super().get_config(), "action_dim": self.action_dim, "initial": self.initial}
