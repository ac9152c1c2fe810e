"""A command without --config that names an agent and an environment trains the named
config made for them (issue 16 item 6: RL Zoo's per-(algorithm, env) hyperparameters)."""

from __future__ import annotations

import pipelines


def test_dqn_on_cartpole_picks_cartpole_dqn_and_keeps_the_users_sets(caplog):
    caplog.set_level("INFO", logger="deepfield")
    config = pipelines.rl.resolve_config(
        overrides=["agent.name=dqn", "agent.total_steps=50000"], data="gym:CartPole-v1"
    )
    tuned = pipelines.rl.resolve_config("cartpole_dqn")
    assert config.agent.name == "dqn" and config.agent.dqn == tuned.agent.dqn
    assert config.agent.network == tuned.agent.network  # not PPO's (64, 64) tanh default
    assert config.agent.total_steps == 50000
    assert "cartpole_dqn" in caplog.text


def test_the_default_agent_and_env_or_an_explicit_config_pick_nothing():
    default = pipelines.rl.resolve_config()
    assert pipelines.rl.resolve_config(overrides=["agent.name=ppo"]) == default
    explicit = pipelines.rl.resolve_config("default", overrides=["agent.name=dqn"])
    assert explicit.agent.network == default.agent.network  # --config is respected


def test_no_named_config_for_the_pair_falls_back_to_default():
    config = pipelines.rl.resolve_config(overrides=["agent.name=a2c"], data="gym:MountainCar-v0")
    default = pipelines.rl.resolve_config()
    assert config.agent.name == "a2c" and config.agent.network == default.agent.network
