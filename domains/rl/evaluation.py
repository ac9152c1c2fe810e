"""Evaluation episodes with a fixed seed list, batched over several envs.

Episode i is reset with `seed + i`, whichever env plays it, so two evaluations of the
same policy see the same episodes and their mean returns are comparable. Running a
batch of envs side by side lets one forward pass pick the actions of all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def run_episodes(
    act: Callable[[np.ndarray], np.ndarray],
    make_env: Callable[[], object],
    episodes: int,
    seed: int,
    *,
    batch: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """(returns, lengths) of `episodes` episodes, in seed order.

    `act` maps a batch of observations to a batch of actions the envs accept.
    """
    envs = [make_env() for _ in range(min(batch, episodes))]
    returns = np.zeros(episodes, np.float64)
    lengths = np.zeros(episodes, np.int64)
    playing: list[int | None] = [None] * len(envs)  # episode index per env
    observations: list[np.ndarray | None] = [None] * len(envs)
    next_episode = 0

    def start(slot: int) -> None:
        nonlocal next_episode
        if next_episode >= episodes:
            playing[slot] = None
            return
        playing[slot] = next_episode
        observations[slot], _ = envs[slot].reset(seed=seed + next_episode)
        next_episode += 1

    try:
        for slot in range(len(envs)):
            start(slot)
        while any(index is not None for index in playing):
            active = [slot for slot, index in enumerate(playing) if index is not None]
            actions = act(np.stack([observations[slot] for slot in active]))
            for slot, action in zip(active, actions, strict=True):
                obs, reward, terminated, truncated, _ = envs[slot].step(action)
                index = playing[slot]
                returns[index] += float(reward)
                lengths[index] += 1
                observations[slot] = obs
                if terminated or truncated:
                    start(slot)
    finally:
        for env in envs:
            env.close()
    return returns, lengths
