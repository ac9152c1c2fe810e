"""Tiny training settings per domain, for the shared harness and the per-domain tests.

Each domain declares its smallest run (`Domain.smoke_run`, a `shared.domain.SmokeRun`):
the named config and `--set` overrides of the smallest run that still exercises every
file of the run directory. A domain without one falls back to its first tour leg with
that leg's `quick` overrides, then to its "default" config, so a new domain passes
through the harness with no edit here.

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
    progress: str = "epoch"  # the history.csv column that counts progress

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


def tiny(name: str) -> Tiny:
    """The tiny settings of domain `name` (see the module docstring for the fallbacks)."""
    from dataclasses import asdict

    from pipelines.domains import get

    domain = get(name)
    if domain.smoke_run is not None:
        return Tiny(**asdict(domain.smoke_run))
    legs = domain.tour_legs
    if legs:
        leg = legs[0]
        return Tiny(leg.config, (*leg.overrides, *leg.quick), task=leg.task, data=leg.data)
    return Tiny("default")
