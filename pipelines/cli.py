"""The `deepfield` command line: a thin layer over the Python API in `pipelines`.

Exit codes: 0 success; 2 bad usage or bad input (one `error:` line); 1 an unexpected
failure (its traceback goes to the run's log.txt when there is a run, else stderr).
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click

from pipelines.domain_cli import NamingGroup
from shared.errors import TargetMissed, UserError


class TopGroup(NamingGroup):
    """`deepfield`: an unknown command names the domains and commands there are."""

    def unknown(self, name: str) -> str:
        return f"unknown command or domain {name!r}; commands: {', '.join(self.commands)}"


@click.group(cls=TopGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def cli(verbose: bool) -> None:
    """Deepfield: applied deep learning on Keras 3 and TensorFlow."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        # Keras prints each epoch on the console; log.txt gets the same as plain lines.
        handler.addFilter(lambda record: record.name != "deepfield.epochs")
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _add_domain_groups() -> None:
    """One group per registered domain (see pipelines.domains and shared.domain)."""
    from pipelines.domain_cli import domain_group
    from pipelines.domains import all_domains

    for domain in all_domains():
        cli.add_command(domain_group(domain))


_add_domain_groups()


# === tour ===
@cli.command()
@click.option("--quick", is_flag=True, help="a few epochs per leg, for a smoke test")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/tour"))
def tour(quick, out):
    """The main job: every domain on embedded data, with a report."""
    from pipelines.tour import run_tour

    run_tour(out, quick=quick)  # raises TargetMissed (exit 3) when a leg misses its target


# === zoo ===
@cli.group()
def zoo() -> None:
    """The architecture zoo."""


@zoo.command("list")
def zoo_list():
    """Every model: weight layers, parameters and forward FLOPs at its preset input."""
    from pipelines.zoo import list_models

    click.echo(list_models())


@zoo.command("show")
@click.argument("name")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="input_shape, num_classes or a model option",
)
def zoo_show(name, overrides):
    """One model's summary."""
    from pipelines.zoo import show_model

    click.echo(show_model(name, list(overrides)))


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="deepfield", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        return 2
    except UserError as err:
        click.echo(f"error: {err}", err=True)
        return 2
    except TargetMissed as err:
        click.echo(f"error: {err}", err=True)
        return 3
    except KeyboardInterrupt:
        click.echo("error: interrupted; rerun the same command to resume", err=True)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        traceback.print_exc(file=sys.stderr)
        click.echo(f"error: unexpected failure: {type(err).__name__}: {err}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
