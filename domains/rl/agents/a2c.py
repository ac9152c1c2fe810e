"""A2C: synchronous advantage actor-critic (the batched form of Mnih et al. 2016's A3C).

Each update is one RMSprop step on a rollout of `n_steps` from every env of a vector
env, with GAE advantages (lambda 1 gives the paper's n-step returns). Hyperparameters
default to SB3's A2C, which RL Zoo runs on CartPole.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from domains.rl.agents.on_policy import OnPolicyAgent, normalize, weighted_mean
from domains.rl.networks import log_prob_and_entropy


def actor_critic_loss(model, batch, hp, normalize_advantage: bool):
    """Policy-gradient loss + vf_coef x value MSE - ent_coef x entropy, weighted rows."""
    weights = batch["weights"]
    advantages = batch["advantages"]
    if normalize_advantage:
        advantages = normalize(advantages, weights)
    outputs = model(tf.cast(batch["obs"], tf.float32), training=True)
    log_probs, entropy = log_prob_and_entropy(outputs, batch["actions"])
    policy_loss = -weighted_mean(tf.stop_gradient(advantages) * log_probs, weights)
    value_loss = weighted_mean(tf.square(batch["returns"] - outputs["value"]), weights)
    entropy_mean = weighted_mean(entropy, weights)
    loss = policy_loss + hp.vf_coef * value_loss - hp.ent_coef * entropy_mean
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy_mean}


class A2CAgent(OnPolicyAgent):
    name = "a2c"

    def __init__(self, config, spec, seed):
        super().__init__(config, spec, seed, config.agent.a2c)
        # PyTorch's RMSprop (SB3) with alpha 0.99 is Keras's rho 0.99.
        self.optimizer = keras.optimizers.RMSprop(
            learning_rate=self.hp.learning_rate, rho=0.99, epsilon=self.hp.rms_prop_eps
        )
        self.optimizer.build(self.model.trainable_variables)  # not inside the first trace

    def update(self, batch, progress):
        self.optimizer.learning_rate = self.learning_rate(progress)
        stats = self._update({k: tf.constant(v) for k, v in batch.items()})
        return {k: float(v) for k, v in stats.items()}

    @tf.function(reduce_retracing=True, jit_compile=True)
    def _update(self, batch):
        with tf.GradientTape() as tape:
            loss, stats = actor_critic_loss(self.model, batch, self.hp, self.hp.normalize_advantage)
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, self.hp.max_grad_norm)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return stats
