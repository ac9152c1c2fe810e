"""The agents' networks (built from the zoo) and the fast forward pass used for acting.

Q-networks map observations to one value per action. Actor-critics map observations
to a dict: `logits` (discrete) or `mean` and `log_std` (continuous, a diagonal
Gaussian), plus `value`. Vector observations get separate policy and value MLPs (SB3's
default); image frames share one Nature-DQN torso between both heads.

Acting happens once per environment step, so it must be cheap: calling a Keras model
eagerly costs about a millisecond. `Forward` runs MLPs in NumPy from a snapshot of the
weights (tens of microseconds) and anything else through one traced `tf.function`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from domains.rl.config import NetworkConfig
from domains.rl.envs import EnvSpec
from shared.zoo import build_model
from shared.zoo.policy_nets import DuelingHead, PolicyLogStd

_NUMPY_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


def torso_name(network: NetworkConfig, spec: EnvSpec) -> str:
    if network.name != "auto":
        return network.name
    return "nature_dqn" if spec.image else "mlp"


def _torso(network: NetworkConfig, spec: EnvSpec, outputs: int | None, name: str, **extra):
    kind = torso_name(network, spec)
    options = {"hidden": list(network.hidden), "activation": network.activation}
    if kind == "nature_dqn":
        options = {}
    model = build_model(
        kind, input_shape=spec.observation_shape, num_classes=outputs, **options, **extra
    )
    model.name = name
    return model


# === Builders ===
def build_q_network(
    spec: EnvSpec,
    network: NetworkConfig,
    dueling: bool,
    init: str = "glorot",
    rng: np.random.Generator | None = None,
) -> keras.Model:
    """Observation -> Q-value per action (a zoo model with a linear or dueling head).

    `init="torch"` redraws every Dense layer as PyTorch's `nn.Linear` default does (what
    SB3's DQN uses): kernel and bias uniform in +-1/sqrt(fan_in), where Keras' default is
    Glorot-uniform kernels and zero biases.
    """
    model = _torso(network, spec, spec.num_actions, "q_network", dueling=dueling)
    if init == "torch":
        torch_default_init(model, rng if rng is not None else np.random.default_rng())
    return model


def torch_default_init(model: keras.Model, rng: np.random.Generator) -> None:
    """Re-initialise each Dense layer (nested ones too) like PyTorch's `nn.Linear`:
    kaiming_uniform(a=sqrt(5)) kernels and uniform biases, both U(+-1/sqrt(fan_in))."""
    for layer in _dense_layers(model):
        fan_in = layer.kernel.shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        layer.kernel.assign(rng.uniform(-bound, bound, layer.kernel.shape).astype(np.float32))
        if layer.bias is not None:
            layer.bias.assign(rng.uniform(-bound, bound, layer.bias.shape).astype(np.float32))


def _dense_layers(layer) -> list:
    if isinstance(layer, keras.layers.Dense):
        return [layer]
    if isinstance(layer, DuelingHead):
        return [layer.value, layer.advantage]
    found = []
    for child in getattr(layer, "layers", []):
        found.extend(_dense_layers(child))
    return found


def build_actor_critic(spec: EnvSpec, network: NetworkConfig) -> keras.Model:
    """Observation -> {"logits" | "mean", "log_std", "value"}."""
    observation = keras.Input(spec.observation_shape, dtype="float32", name="observation")
    if spec.image:
        features = _torso(network, spec, None, "torso")(observation)
        policy_features = value_features = features
    else:
        policy_features = _torso(network, spec, None, "policy_torso")(observation)
        value_features = _torso(network, spec, None, "value_torso")(observation)
    value = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.Orthogonal(1.0), name="value_head"
    )(value_features)
    outputs = {"value": keras.layers.Reshape((), name="value")(value)}
    # Small initial policy weights make the first policy near uniform (Andrychowicz et
    # al. 2021, "What matters in on-policy RL"), as SB3's orthogonal init with gain 0.01.
    head_init = keras.initializers.Orthogonal(0.01)
    if spec.discrete:
        outputs["logits"] = keras.layers.Dense(
            spec.num_actions, kernel_initializer=head_init, name="logits"
        )(policy_features)
    else:
        outputs["mean"] = keras.layers.Dense(
            spec.num_actions, kernel_initializer=head_init, name="mean"
        )(policy_features)
        outputs["log_std"] = PolicyLogStd(spec.num_actions, name="log_std")(policy_features)
    return keras.Model(observation, outputs, name="actor_critic")


# === Acting ===
class Forward:
    """`forward(obs) -> dict of NumPy outputs` for a Q-network or an actor-critic.

    Call `sync()` after the weights change (after each update round). MLP models run
    in NumPy; others through a tf.function traced once for a batch of any size.
    """

    def __init__(self, model: keras.Model, observation_shape: tuple[int, ...]):
        self.model = model
        self._chains = _numpy_chains(model)
        self._params: dict[str, list] = {}
        self._graph = None
        if self._chains is None:
            signature = [tf.TensorSpec((None, *observation_shape), tf.float32)]
            self._graph = tf.function(
                lambda obs: self._as_dict(model(obs, training=False)), input_signature=signature
            )
        self.sync()

    @staticmethod
    def _as_dict(outputs):
        return outputs if isinstance(outputs, dict) else {"q_values": outputs}

    def sync(self) -> None:
        if self._chains is None:
            return
        self._params = {
            name: [_layer_params(layer) for layer in chain] for name, chain in self._chains.items()
        }

    def __call__(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        obs = np.asarray(obs, np.float32)
        if self._graph is not None:
            return {k: v.numpy() for k, v in self._graph(obs).items()}
        flat = obs.reshape(len(obs), -1)
        outputs = {name: _run_chain(params, flat) for name, params in self._params.items()}
        if "value" in outputs:
            outputs["value"] = outputs["value"][:, 0]
        return outputs


def _numpy_chains(model: keras.Model) -> dict[str, list] | None:
    """Output name -> ordered layers, when every path is a chain NumPy can run."""
    names = {layer.name: layer for layer in model.layers}
    if model.name == "q_network":
        chain = _dense_chain(model)
        return None if chain is None else {"q_values": chain}
    if model.name != "actor_critic" or "policy_torso" not in names:
        return None
    policy, value = _dense_chain(names["policy_torso"]), _dense_chain(names["value_torso"])
    if policy is None or value is None:
        return None
    chains = {"value": [*value, names["value_head"]]}
    if "logits" in names:
        chains["logits"] = [*policy, names["logits"]]
    else:
        chains["mean"] = [*policy, names["mean"]]
        chains["log_std"] = [names["log_std"]]
    return chains


def _dense_chain(model: keras.Model) -> list | None:
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer | keras.layers.Flatten):
            continue
        if isinstance(layer, keras.layers.Dense):
            if layer.get_config()["activation"] not in _NUMPY_ACTIVATIONS:
                return None
            layers.append(layer)
        elif isinstance(layer, DuelingHead):
            layers.append(layer)
        else:
            return None
    return layers


def _layer_params(layer) -> tuple:
    if isinstance(layer, DuelingHead):
        return (
            "dueling",
            layer.value.kernel.numpy(),
            layer.value.bias.numpy(),
            layer.advantage.kernel.numpy(),
            layer.advantage.bias.numpy(),
        )
    if isinstance(layer, PolicyLogStd):
        return ("log_std", layer.log_std.numpy())
    activation = _NUMPY_ACTIVATIONS[layer.get_config()["activation"]]
    return ("dense", layer.kernel.numpy(), layer.bias.numpy(), activation)


def _run_chain(params: list[tuple], x: np.ndarray) -> np.ndarray:
    for kind, *weights in params:
        if kind == "dense":
            kernel, bias, activation = weights
            x = activation(x @ kernel + bias)
        elif kind == "dueling":
            value_k, value_b, adv_k, adv_b = weights
            advantage = x @ adv_k + adv_b
            x = (x @ value_k + value_b) + advantage - advantage.mean(axis=-1, keepdims=True)
        else:  # log_std: one row per observation
            x = np.broadcast_to(weights[0], (len(x), len(weights[0])))
    return x


def greedy_actions(outputs: dict[str, np.ndarray], spec: EnvSpec) -> np.ndarray:
    """The deterministic action: argmax Q, argmax logits, or the clipped Gaussian mean."""
    if "q_values" in outputs:
        return outputs["q_values"].argmax(axis=-1)
    if "logits" in outputs:
        return outputs["logits"].argmax(axis=-1)
    return np.clip(outputs["mean"], spec.action_low, spec.action_high)


def sample_actions(
    outputs: dict[str, np.ndarray], spec: EnvSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(actions, log-probabilities) sampled from the policy, in NumPy.

    Continuous actions are returned unclipped (their log-probability is of the sample);
    the env gets them clipped to its bounds (`env_actions`).
    """
    if "logits" in outputs:
        logits = outputs["logits"]
        log_probs = logits - _logsumexp(logits)
        # Gumbel-max: argmax(logits + Gumbel noise) is a categorical sample.
        actions = np.argmax(logits - np.log(-np.log(rng.random(logits.shape))), axis=-1)
        return actions, np.take_along_axis(log_probs, actions[:, None], axis=-1)[:, 0]
    mean, log_std = outputs["mean"], outputs["log_std"]
    noise = rng.standard_normal(mean.shape).astype(np.float32)
    actions = mean + np.exp(log_std) * noise
    log_probs = np.sum(-0.5 * noise**2 - log_std - 0.5 * np.log(2 * np.pi), axis=-1)
    return actions, log_probs


def env_actions(actions: np.ndarray, spec: EnvSpec) -> np.ndarray:
    return actions if spec.discrete else np.clip(actions, spec.action_low, spec.action_high)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


# === Training-side distributions (TensorFlow) ===
def log_prob_and_entropy(outputs: dict, actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Log-probability of `actions` and the policy's entropy, per row."""
    if "logits" in outputs:
        log_probs = tf.nn.log_softmax(outputs["logits"])
        taken = tf.gather(log_probs, tf.cast(actions, tf.int32), batch_dims=1)
        entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
        return taken, entropy
    mean, log_std = outputs["mean"], outputs["log_std"]
    z = (tf.cast(actions, mean.dtype) - mean) * tf.exp(-log_std)
    log_prob = tf.reduce_sum(-0.5 * tf.square(z) - log_std - 0.5 * np.log(2 * np.pi), axis=-1)
    entropy = tf.reduce_sum(log_std + 0.5 * np.log(2 * np.pi * np.e), axis=-1)
    return log_prob, entropy
