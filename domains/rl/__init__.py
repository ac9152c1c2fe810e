"""Reinforcement learning: DQN, A2C, A3C and PPO agents on Gymnasium environments.

The domain's contract (`shared.domain.Domain`); its verbs import their TensorFlow
modules (`task`, `serving`) only when called.
"""

from __future__ import annotations

from pathlib import Path

from domains.rl.config import RLConfig
from shared.domain import Domain, Option, SmokeRun, TourLeg, Verb, register_domain
from shared.errors import UserError


@register_domain
class RLDomain(Domain):
    name = "rl"
    summary = "RL agents (DQN, A2C, A3C, PPO): train, evaluate, play, predict, export."
    tasks = ("control",)
    config_class = RLConfig
    data_specs = ("gym",)
    strategies = ("auto", "default", "one-device")
    strategies_note = "rl trains on one device: A3C runs its own parallel workers"
    train_shortcuts = {"agent": "agent.name", "total_steps": "agent.total_steps"}
    # `--set agent.name=dqn --data gym:CartPole-v1` trains cartpole_dqn's tuned settings
    # (RL Zoo's per-(algorithm, env) hyperparameters), not PPO's defaults with DQN.
    preset_keys = ("agent.name", "data.source")
    verb_options = {
        "evaluate": (
            Option("--episodes", "episodes", "int", "default 100", min=1),
            Option("--seed", "seed", "int", "first episode seed (default 10000)"),
        ),
    }
    extra_verbs = (
        Verb(
            "play",
            "Play one greedy episode and write it as a GIF; prints its path and return.",
            (
                Option("--out", "out", "path", "GIF to write"),
                Option("--seed", "seed", "int", "the episode's reset seed"),
            ),
        ),
    )
    tour_legs = (
        TourLeg(
            "rl",
            "PPO on Gymnasium CartPole-v1, 100k env steps (RL Zoo's budget and hyperparameters)",
            "mean_return",
            475.0,
            config="cartpole_ppo",
            quick=("agent.total_steps=4096", "evaluate.episodes=10", "train.eval_interval=2048"),
        ),
    )
    # A few thousand PPO steps on the project's corridor env: learns the optimum (0.94).
    # The agents train through their own loop (rollouts, replay), not Keras fit, so
    # nothing here fine-tunes: pruning and distillation are refused; the policy network's
    # Dense layers quantize, and evaluate plays the quantized policy.
    compress_methods = {"control": ("quantize",)}
    smoke_run = SmokeRun(
        "corridor",
        ("agent.total_steps=2048", "train.eval_interval=1024", "evaluate.episodes=10"),
        resume=("agent.total_steps=8192", "train.checkpoint_interval=1024"),
        progress="step",
    )
    task_module = "domains.rl.task"
    task_verbs = ("train", "predict")
    order = 20
    notebook_run = "cartpole_ppo"

    def check(self, config: RLConfig) -> None:
        """The env exists, its spaces are supported and the agent can act in them:
        gymnasium alone tells, so these errors come before TensorFlow starts."""
        super().check(config)
        from domains.rl import envs

        envs.check_agent_supports(config.agent.name, envs.describe(config.data))

    def evaluate(self, run, config, data, split, out, *, episodes=None, seed=None, **options):
        """Mean and std return over `episodes` (default 100) with seeds seed, seed+1, ...

        `data` may name the run's own env only (another env would not match the
        network); `split` has no meaning here (RL has no data splits).
        """
        from domains.rl import task

        if data is not None and data != config.data.source:
            raise UserError(
                f"{run.path} was trained on {config.data.source}; evaluate it there "
                f"(got --data {data})"
            )
        return task.evaluate(run, config, episodes=episodes, seed=seed, out=out)

    def play(self, run, config, out: Path | None = None, seed: int | None = None, **options):
        """Play one greedy episode into a GIF (default RUN/play/episode-seedN.gif)."""
        from domains.rl import task

        return task.play(run, config, out=Path(out) if out else None, seed=seed, **options)

    def load_data(self, config: RLConfig):
        """RL has no data set: an agent learns from the episodes it plays in its env."""
        env = config.data.source.split(":", 1)[-1]
        raise UserError(
            f"rl has no data set to load: an agent learns from the episodes it plays in its "
            f"environment ({config.data.source}). Look at the environment with "
            f"gymnasium.make({env!r}), and at a trained agent with rl.play(run) or "
            "rl.evaluate(run)"
        )

    def serving_spec(self, run, config):
        from domains.rl import serving, task

        return serving.serving_spec(run, config, task.load_model(run), task.load_spec(run))

    def export_name(self, run, config) -> str:
        env = "".join(c if c.isalnum() else "_" for c in config.data.source.split(":", 1)[-1])
        return f"rl_{config.agent.name}_{env.strip('_').lower()}"
