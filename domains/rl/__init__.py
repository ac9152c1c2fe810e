"""Reinforcement learning: DQN, A2C, A3C and PPO agents on Gymnasium environments."""
