"""DQN (Mnih et al. 2015) with double-DQN targets, dueling heads and n-step returns.

Every `train_freq` vector steps (once `learning_starts` steps are in the replay
buffer) it takes `gradient_steps` Huber-loss steps, all in one `tf.function` call:
the minibatches are drawn in NumPy up front and the loop over them runs in the graph,
so a round of 128 steps costs one Python-to-TensorFlow crossing, not 128.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from domains.rl.agents.base import Agent
from domains.rl.buffers import ReplayBuffer
from domains.rl.envs import make_vector_env
from domains.rl.networks import Forward, build_q_network


class DQNAgent(Agent):
    name = "dqn"

    def __init__(self, config, spec, seed):
        super().__init__(config, spec, seed)
        self.hp = hp = config.agent.dqn
        network = config.agent.network
        init_rng = np.random.default_rng([seed, 7])  # not self.rng: acting stays as it was
        self.model = build_q_network(spec, network, hp.dueling, hp.init, init_rng)
        self.target = build_q_network(spec, network, hp.dueling)
        self.target.set_weights(self.model.get_weights())
        self.optimizer = keras.optimizers.Adam(hp.learning_rate, epsilon=hp.adam_epsilon)
        # Built now, not inside the first traced update (which would then trace twice).
        self.optimizer.build(self.model.trainable_variables)
        self.forward = Forward(self.model, spec.observation_shape)
        self.buffer = ReplayBuffer(
            hp.buffer_size,
            spec.observation_shape,
            spec.observation_dtype,
            num_envs=hp.num_envs,
            n_step=hp.n_step,
            gamma=hp.gamma,
        )
        self.vector_steps = 0

    def epsilon(self, progress: float) -> float:
        """Linear decay from the initial to the final epsilon over `exploration_fraction`."""
        hp = self.hp
        fraction = min(1.0, progress / hp.exploration_fraction)
        return hp.exploration_initial_eps + fraction * (
            hp.exploration_final_eps - hp.exploration_initial_eps
        )

    # === Training ===
    def train(self, loop) -> None:
        hp = self.hp
        envs = make_vector_env(self.config.data, hp.num_envs)
        try:
            obs, _ = envs.reset(seed=self.seed + loop.steps)
            autoreset = np.zeros(hp.num_envs, bool)
            metrics: dict[str, float] = {}
            while not loop.done:
                epsilon = self.epsilon(loop.progress)
                if loop.steps < hp.learning_starts:
                    actions = self.rng.integers(0, self.spec.num_actions, hp.num_envs)
                else:
                    actions = self.forward(obs)["q_values"].argmax(axis=-1)
                    explore = self.rng.random(hp.num_envs) < epsilon
                    actions = np.where(
                        explore, self.rng.integers(0, self.spec.num_actions, hp.num_envs), actions
                    )
                next_obs, rewards, terminated, truncated, infos = loop.step_env(envs, actions)
                # With NEXT_STEP autoreset, final observations arrive as `next_obs`; the
                # step after an episode end only resets and is not a transition.
                self.buffer.add(obs, actions, rewards, next_obs, terminated, truncated, ~autoreset)
                loop.record(infos)
                # Envs that only reset did not step: they count neither toward the budget
                # nor toward the train/target intervals (SB3's envs reset inside the
                # final step, so its step counts have no such steps either).
                stepped = int(np.count_nonzero(~autoreset))
                autoreset = terminated | truncated
                obs = next_obs
                if stepped == 0:
                    loop.advance(0)
                    continue
                self.vector_steps += 1
                steps = loop.steps + stepped
                if self.vector_steps % max(hp.target_update_interval // hp.num_envs, 1) == 0:
                    self._update_target()
                if (
                    steps > hp.learning_starts
                    and self.vector_steps % hp.train_freq == 0
                    and len(self.buffer) >= hp.batch_size
                ):
                    metrics = self._update_round()
                    metrics["epsilon"] = epsilon
                loop.advance(stepped, metrics)
                metrics = {}
        finally:
            envs.close()

    def _update_round(self) -> dict[str, float]:
        hp = self.hp
        batch = self.buffer.sample(self.rng, hp.batch_size, hp.gradient_steps)
        loss, q_mean = self._train_steps(
            tf.constant(batch["obs"]),
            tf.constant(batch["actions"]),
            tf.constant(batch["returns"]),
            tf.constant(batch["next_obs"]),
            tf.constant(batch["discounts"]),
        )
        self.forward.sync()
        return {"loss": float(loss), "q_mean": float(q_mean)}

    @tf.function(reduce_retracing=True, jit_compile=True)
    def _train_steps(self, obs, actions, returns, next_obs, discounts):
        """`len(obs)` gradient steps, one per minibatch; returns mean loss and mean Q."""
        rounds = tf.shape(obs)[0]
        total_loss, total_q = tf.constant(0.0), tf.constant(0.0)
        for i in tf.range(rounds):
            loss, q_mean = self._train_step(
                obs[i], actions[i], returns[i], next_obs[i], discounts[i]
            )
            total_loss += loss
            total_q += q_mean
        count = tf.cast(rounds, tf.float32)
        return total_loss / count, total_q / count

    def _train_step(self, obs, actions, returns, next_obs, discounts):
        obs = tf.cast(obs, tf.float32)
        next_obs = tf.cast(next_obs, tf.float32)
        targets = dqn_targets(
            self.model(next_obs, training=False) if self.hp.double else None,
            self.target(next_obs, training=False),
            returns,
            discounts,
        )
        with tf.GradientTape() as tape:
            q_values = self.model(obs, training=True)
            taken = tf.gather(q_values, tf.cast(actions, tf.int32), batch_dims=1)
            loss = tf.reduce_mean(huber(targets - taken))
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, self.hp.max_grad_norm)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, tf.reduce_mean(taken)

    @tf.function
    def _update_target(self) -> None:
        tau = self.hp.tau
        for target, online in zip(self.target.weights, self.model.weights, strict=True):
            target.assign(online if tau == 1.0 else tau * online + (1 - tau) * target)

    # === Checkpoint state ===
    def tracked(self) -> dict[str, list]:
        return {**super().tracked(), "target": self.target.weights}

    def extra_state(self) -> dict[str, np.ndarray]:
        state = {"vector_steps": np.array(self.vector_steps)}
        if self.config.train.checkpoint_replay_buffer:
            state.update(self.buffer.state())
        return state

    def load_extra_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.vector_steps = int(arrays["vector_steps"])
        if "replay_returns" in arrays:
            self.buffer.load_state(arrays)


def dqn_targets(next_q_online, next_q_target, returns, discounts):
    """return + discount * Q_target(s', a*): a* = argmax of the online net (double DQN,
    van Hasselt et al. 2016) or of the target net itself (`next_q_online` None)."""
    if next_q_online is None:
        best = tf.reduce_max(next_q_target, axis=-1)
    else:
        choice = tf.argmax(next_q_online, axis=-1, output_type=tf.int32)
        best = tf.gather(next_q_target, choice, batch_dims=1)
    return tf.stop_gradient(returns + discounts * best)


def huber(error, delta: float = 1.0):
    """Huber loss per element (SB3's smooth L1): quadratic near 0, linear beyond delta."""
    absolute = tf.abs(error)
    quadratic = tf.minimum(absolute, delta)
    return 0.5 * tf.square(quadratic) + delta * (absolute - quadratic)
