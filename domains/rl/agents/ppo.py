"""PPO (Schulman et al. 2017): clipped surrogate objective over minibatch epochs.

Per rollout: GAE advantages, then `n_epochs` passes over shuffled minibatches, each
pass one `tf.function` call that loops over its minibatches in the graph. Advantages
are normalised per minibatch (as SB3 does), the entropy bonus is optional, and with
`target_kl` the epochs stop once the approximate KL to the rollout policy passes
1.5 x target_kl.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from domains.rl.agents.on_policy import OnPolicyAgent, normalize, weighted_mean
from domains.rl.networks import log_prob_and_entropy


class PPOAgent(OnPolicyAgent):
    name = "ppo"

    def __init__(self, config, spec, seed):
        super().__init__(config, spec, seed, config.agent.ppo)
        # SB3's Adam epsilon. The learning rate and clip range are variables, so their
        # schedules change them without retracing the update.
        self.optimizer = keras.optimizers.Adam(learning_rate=self.hp.learning_rate, epsilon=1e-5)
        self.clip = tf.Variable(self.hp.clip_range, trainable=False, dtype=tf.float32)
        self.optimizer.build(self.model.trainable_variables)  # not inside the first trace

    def update(self, batch, progress):
        hp = self.hp
        self.optimizer.learning_rate = self.learning_rate(progress)
        clip_scale = 1.0 - progress if hp.clip_range_schedule == "linear" else 1.0
        self.clip.assign(hp.clip_range * clip_scale)
        size = len(batch["advantages"])
        minibatches = max(1, -(-size // hp.batch_size))
        width = min(hp.batch_size, size)
        orders = []
        for _ in range(hp.n_epochs):
            # Every minibatch full size: the remainder is padded with random repeats.
            order = self.rng.permutation(size)
            pad = minibatches * width - size
            if pad:
                order = np.concatenate([order, self.rng.choice(size, pad)])
            orders.append(order.reshape(minibatches, width))
        limit = 1.5 * hp.target_kl if hp.target_kl is not None else np.inf
        stats = self._train(
            {k: tf.constant(v) for k, v in batch.items()},
            tf.constant(np.stack(orders)),
            tf.constant(limit, tf.float32),
        )
        epochs_done = float(stats.pop("epochs"))
        totals = {key: float(value) for key, value in stats.items()}
        metrics = dict(totals)
        metrics.update(
            learning_rate=float(self.optimizer.learning_rate.numpy()),
            epochs=epochs_done,
            explained_variance=explained_variance(batch),
        )
        return metrics

    @tf.function(reduce_retracing=True, jit_compile=True)
    def _train(self, batch, index, kl_limit):
        """Every epoch's minibatches in one graph call; stops after an epoch whose mean
        approximate KL passed `kl_limit`. Returns per-step means and the epochs run."""
        keys = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
        totals = {key: tf.constant(0.0) for key in keys}
        epochs, minibatches = tf.shape(index)[0], tf.shape(index)[1]
        done = tf.constant(0)
        for epoch in tf.range(epochs):
            epoch_kl = tf.constant(0.0)
            for i in tf.range(minibatches):
                rows = index[epoch, i]
                stats = self._step({k: tf.gather(v, rows) for k, v in batch.items()})
                totals = {key: totals[key] + stats[key] for key in keys}
                epoch_kl += stats["approx_kl"]
            done += 1
            if epoch_kl / tf.cast(minibatches, tf.float32) > kl_limit:
                break
        steps = tf.cast(done * minibatches, tf.float32)
        result = {key: value / steps for key, value in totals.items()}
        result["epochs"] = tf.cast(done, tf.float32)
        return result

    def _step(self, mb):
        hp = self.hp
        weights = mb["weights"]
        advantages = mb["advantages"]
        if hp.normalize_advantage:
            advantages = normalize(advantages, weights)
        with tf.GradientTape() as tape:
            outputs = self.model(tf.cast(mb["obs"], tf.float32), training=True)
            log_probs, entropy = log_prob_and_entropy(outputs, mb["actions"])
            log_ratio = log_probs - mb["log_probs"]
            ratio = tf.exp(log_ratio)
            clipped = tf.clip_by_value(ratio, 1.0 - self.clip, 1.0 + self.clip)
            surrogate = tf.minimum(ratio * advantages, clipped * advantages)
            policy_loss = -weighted_mean(surrogate, weights)
            value_loss = weighted_mean(tf.square(mb["returns"] - outputs["value"]), weights)
            entropy_mean = weighted_mean(entropy, weights)
            loss = policy_loss + hp.vf_coef * value_loss - hp.ent_coef * entropy_mean
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, hp.max_grad_norm)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy_mean,
            # Schulman's low-variance KL estimator: E[(r - 1) - log r].
            "approx_kl": weighted_mean((ratio - 1.0) - log_ratio, weights),
            "clip_fraction": weighted_mean(
                tf.cast(tf.abs(ratio - 1.0) > self.clip, tf.float32), weights
            ),
        }


def explained_variance(batch: dict[str, np.ndarray]) -> float:
    """1 - Var[returns - values] / Var[returns] over the valid rows (1: perfect critic)."""
    keep = batch["weights"] > 0
    returns, values = batch["returns"][keep], batch["values"][keep]
    variance = np.var(returns)
    return float("nan") if variance == 0 else float(1.0 - np.var(returns - values) / variance)
