"""Tiny training settings per domain, for the shared harness and the per-domain tests.

One table, keyed by domain name: the named config and `--set` overrides of the smallest
run that still exercises every file of the run directory. A domain missing here falls
back to its first tour leg with that leg's `quick` overrides, then to its "default"
config, so a new domain passes through the harness with no edit to this file (a
`test_overrides` attribute on `shared.domain.Domain` would let a domain declare its own).

`resume` adds what makes a run long enough to be killed between its first checkpoint
and its end (more epochs or env steps, frequent checkpoints), and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tiny:
    config: str | None = None
    overrides: tuple[str, ...] = ()
    task: str | None = None
    data: str | None = None
    resume: tuple[str, ...] = ("train.epochs=12",)  # for the SIGKILL test
    history_key: str = "epoch"  # the history.csv column that counts progress

    def cli_args(self, extra: tuple[str, ...] = ()) -> list[str]:
        """The same settings as `deepfield <domain> train` options."""
        args = []
        for flag, value in (
            ("--config", self.config),
            ("--task", self.task),
            ("--data", self.data),
        ):
            if value is not None:
                args += [flag, value]
        for item in (*self.overrides, *extra):
            args += ["--set", item]
        return args


# Two quick epochs of a narrow CNN on scikit-learn digits: far above chance in seconds.
VISION = (
    "train.epochs=2",
    "train.batch_size=64",
    "train.learning_rate=0.01",
    "train.warmup_epochs=0",
    "model.filters=[8, 16]",
)
# A few thousand PPO steps on the project's corridor: learns the optimum (0.94).
RL = ("agent.total_steps=2048", "train.eval_interval=1024", "evaluate.episodes=10")
# German credit (1,000 rows), 12 epochs: the finance tests' own credit run.
FINANCE = ("train.epochs=12",)

TINY: dict[str, Tiny] = {
    "vision": Tiny("digits", VISION),
    "rl": Tiny(
        "corridor",
        RL,
        resume=("agent.total_steps=8192", "train.checkpoint_interval=1024"),
        history_key="step",
    ),
    "finance": Tiny("credit", FINANCE, resume=("train.epochs=20",)),
}


def tiny(name: str) -> Tiny:
    """The tiny settings of domain `name` (see the module docstring for the fallbacks)."""
    if name in TINY:
        return TINY[name]
    from pipelines.domains import get

    legs = get(name).tour_legs
    if legs:
        leg = legs[0]
        return Tiny(leg.config, (*leg.overrides, *leg.quick), task=leg.task, data=leg.data)
    return Tiny("default")
