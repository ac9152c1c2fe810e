"""The numbers behind the agents: GAE, n-step replay, DQN targets, the NumPy forward pass."""

import numpy as np
import pytest
import tensorflow as tf

from domains.rl.agents.dqn import dqn_targets, huber
from domains.rl.buffers import ReplayBuffer, compute_gae
from domains.rl.config import NetworkConfig
from domains.rl.envs import EnvSpec
from domains.rl.networks import (
    Forward,
    build_actor_critic,
    build_q_network,
    log_prob_and_entropy,
    sample_actions,
)

GAMMA, LAM = 0.9, 0.5


def test_gae_bootstraps_on_truncation_not_termination_and_skips_autoreset_rows():
    # One env, 4 steps: step 0 ends by truncation, step 1 is the autoreset step (invalid,
    # its obs is the final obs, so values[1] = V(final obs)), step 2 continues, step 3
    # terminates.
    rewards = np.array([[1.0], [0.0], [2.0], [3.0]], np.float32)
    values = np.array([[0.5], [4.0], [1.0], [2.0]], np.float32)
    terminated = np.array([[False], [False], [False], [True]])
    ended = np.array([[True], [False], [False], [True]])
    valid = np.array([[True], [False], [True], [True]])
    last = np.array([7.0], np.float32)
    adv, ret = compute_gae(rewards, values, last, terminated, ended, valid, GAMMA, LAM)
    # step 3: terminated, no bootstrap: 3 - 2 = 1
    assert adv[3, 0] == pytest.approx(1.0)
    # step 2: delta = 2 + 0.9 * 2 - 1 = 2.8; plus gamma*lambda*A3 = 0.45
    assert adv[2, 0] == pytest.approx(2.8 + 0.45)
    assert adv[1, 0] == 0.0 and ret[1, 0] == 0.0  # the autoreset row counts for nothing
    # step 0: truncated, bootstraps from V(final obs) = 4, and stops there: 1 + 3.6 - 0.5
    assert adv[0, 0] == pytest.approx(4.1)
    assert ret[0, 0] == pytest.approx(4.6)


def test_gae_with_lambda_one_is_the_n_step_return():
    rewards = np.ones((3, 1), np.float32)
    values = np.zeros((3, 1), np.float32)
    flags = np.zeros((3, 1), bool)
    adv, ret = compute_gae(
        rewards, values, np.array([10.0], np.float32), flags, flags, ~flags, GAMMA, 1.0
    )
    assert ret[0, 0] == pytest.approx(1 + 0.9 + 0.81 + 0.729 * 10)


def _buffer(n_step):
    return ReplayBuffer(16, (1,), "float32", num_envs=1, n_step=n_step, gamma=GAMMA)


def _add(buffer, obs, reward, next_obs, terminated=False, truncated=False, valid=True):
    buffer.add(
        np.array([[obs]], np.float32), np.array([0]), np.array([reward], np.float32),
        np.array([[next_obs]], np.float32), np.array([terminated]), np.array([truncated]),
        np.array([valid]),
    )  # fmt: skip


def test_one_step_replay_discount_is_zero_only_on_termination():
    buffer = _buffer(1)
    _add(buffer, 0, 1.0, 1)
    _add(buffer, 1, 1.0, 2, truncated=True)
    _add(buffer, 2, 0.0, 0, valid=False)  # the autoreset step: not a transition
    _add(buffer, 0, 5.0, 9, terminated=True)
    assert len(buffer) == 3
    np.testing.assert_allclose(buffer.discounts[:3], [0.9, 0.9, 0.0])
    np.testing.assert_allclose(buffer.next_obs[:3, 0], [1, 2, 9])


def test_n_step_returns_flush_at_episode_end():
    buffer = _buffer(3)
    for t, reward in enumerate([1.0, 2.0, 3.0, 4.0]):
        _add(buffer, t, reward, t + 1, terminated=(t == 3))
    # starts 0 and 1 got full 3-step returns; 2 and 3 were flushed by the termination
    assert len(buffer) == 4
    np.testing.assert_allclose(
        buffer.returns[:4],
        [1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4, 4.0],
        rtol=1e-6,
    )
    # start 1 reaches the termination inside its 3 steps: no bootstrap either
    np.testing.assert_allclose(buffer.discounts[:4], [0.729, 0.0, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(buffer.next_obs[:4, 0], [3, 4, 4, 4])


def test_n_step_truncation_keeps_the_bootstrap():
    buffer = _buffer(3)
    _add(buffer, 0, 1.0, 1)
    _add(buffer, 1, 1.0, 2, truncated=True)
    np.testing.assert_allclose(buffer.returns[:2], [1.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(buffer.discounts[:2], [0.81, 0.9], rtol=1e-6)


def test_replay_state_round_trips():
    buffer = _buffer(1)
    for t in range(20):  # wraps around the 16 slots
        _add(buffer, t, float(t), t + 1)
    restored = _buffer(1)
    restored.load_state(buffer.state())
    assert len(restored) == 16
    np.testing.assert_allclose(np.sort(restored.returns), np.arange(4, 20))


def test_double_dqn_target_uses_online_argmax_and_target_values():
    online = tf.constant([[1.0, 5.0], [3.0, 0.0]])
    target = tf.constant([[10.0, 2.0], [4.0, 8.0]])
    returns = tf.constant([1.0, 1.0])
    discounts = tf.constant([0.5, 0.0])
    double = dqn_targets(online, target, returns, discounts).numpy()
    plain = dqn_targets(None, target, returns, discounts).numpy()
    np.testing.assert_allclose(double, [1 + 0.5 * 2.0, 1.0])
    np.testing.assert_allclose(plain, [1 + 0.5 * 10.0, 1.0])


def test_huber_is_quadratic_then_linear():
    np.testing.assert_allclose(huber(tf.constant([0.5, -3.0])).numpy(), [0.125, 2.5])


SPEC = EnvSpec("t", (4,), "float32", False, True, 3)
CONTINUOUS = EnvSpec("t", (3,), "float32", False, False, 2, (-1.0, -1.0), (1.0, 1.0))


@pytest.mark.parametrize("dueling", [False, True])
def test_numpy_forward_matches_keras_q_network(dueling):
    model = build_q_network(SPEC, NetworkConfig(hidden=[16, 8], activation="relu"), dueling)
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(Forward(model, (4,))(obs)["q_values"], model(obs).numpy(), atol=1e-5)


@pytest.mark.parametrize("spec", [SPEC, CONTINUOUS], ids=["discrete", "continuous"])
def test_numpy_forward_and_sampling_match_tensorflow(spec):
    model = build_actor_critic(spec, NetworkConfig(hidden=[16]))
    obs = np.random.default_rng(1).normal(size=(6, *spec.observation_shape)).astype(np.float32)
    reference = {k: v.numpy() for k, v in model(obs).items()}
    outputs = Forward(model, spec.observation_shape)(obs)
    for key, value in reference.items():
        np.testing.assert_allclose(outputs[key], value, atol=1e-5)
    actions, log_probs = sample_actions(outputs, spec, np.random.default_rng(2))
    tf_log_probs, entropy = log_prob_and_entropy(model(obs), tf.constant(actions))
    np.testing.assert_allclose(log_probs, tf_log_probs.numpy(), atol=1e-5)
    assert np.all(entropy.numpy() > 0)


def test_categorical_sampling_follows_the_probabilities():
    logits = np.log(np.array([[0.7, 0.2, 0.1]] * 20000, np.float32))
    actions, _ = sample_actions({"logits": logits}, SPEC, np.random.default_rng(3))
    np.testing.assert_allclose(np.bincount(actions) / len(actions), [0.7, 0.2, 0.1], atol=0.015)


@pytest.mark.parametrize(
    "name, shape, options",
    [
        ("mlp", (4,), {"dueling": True, "hidden": [8, 8]}),
        ("mlp", (5, 5), {"activation": "relu"}),
        ("nature_dqn", (36, 36, 2), {"hidden": 16}),
    ],
    ids=["mlp-dueling", "mlp-table", "nature-dqn"],
)
def test_policy_zoo_models_round_trip_and_train_a_step(name, shape, options, tmp_path):
    import keras

    from shared.zoo import build_model

    model = build_model(name, input_shape=shape, num_classes=3, **options)
    x = np.random.default_rng(0).uniform(0, 255, (4, *shape)).astype(np.float32)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-5)
    model.compile(optimizer="adam", loss="mse")
    before = model.evaluate(x, np.zeros((4, 3)), verbose=0)
    model.fit(x, np.zeros((4, 3)), epochs=3, verbose=0)
    assert model.evaluate(x, np.zeros((4, 3)), verbose=0) < before


def test_policy_zoo_models_reject_wrong_inputs():
    from shared.errors import UserError
    from shared.zoo import build_model

    with pytest.raises(UserError, match="use nature_dqn for image frames"):
        build_model("mlp", input_shape=(84, 84, 4), num_classes=2)
    with pytest.raises(UserError, match="at least 36x36"):
        build_model("nature_dqn", input_shape=(20, 20, 4), num_classes=2)
