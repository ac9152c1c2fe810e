"""The agents, by `agent.name`: DQN, A2C, A3C and PPO."""

from __future__ import annotations

from domains.rl.agents.a2c import A2CAgent
from domains.rl.agents.a3c import A3CAgent
from domains.rl.agents.base import Agent
from domains.rl.agents.dqn import DQNAgent
from domains.rl.agents.ppo import PPOAgent

AGENTS: dict[str, type[Agent]] = {
    "dqn": DQNAgent,
    "a2c": A2CAgent,
    "a3c": A3CAgent,
    "ppo": PPOAgent,
}


def make_agent(config, spec, seed: int) -> Agent:
    return AGENTS[config.agent.name](config, spec, seed)


__all__ = ["AGENTS", "A2CAgent", "A3CAgent", "Agent", "DQNAgent", "PPOAgent", "make_agent"]
