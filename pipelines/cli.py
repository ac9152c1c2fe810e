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
    """Deepfield: applied deep learning on Keras 3 and TensorFlow.

    `deepfield DOMAIN VERB` trains, evaluates, predicts, explains and exports; `tour`
    runs every domain on embedded data; `zoo` and `runs` list models and runs.

    \b
    Example: deepfield tour --quick
             deepfield vision train --help
    """
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
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/tour"),
    show_default=True,
    help="folder for the legs' runs and the report",
)
def tour(quick, out):
    """The main job: every domain on embedded data, with a report.

    Exit code 3 when a leg misses its target (full tour only).

    \b
    Example: deepfield tour --quick --out runs/tour-quick
    """
    from pipelines.tour import run_tour

    run_tour(out, quick=quick)  # raises TargetMissed (exit 3) when a leg misses its target


# === zoo ===
@cli.group(cls=NamingGroup)
def zoo() -> None:
    """The architecture zoo: every model by name, its size and cost.

    \b
    Example: deepfield zoo list --kind image_classifier
    """


def _kinds() -> str:
    from shared.model_catalog import entries

    return ", ".join(sorted({entry["kind"] for entry in entries().values()}))


@zoo.command("list")
@click.argument("pattern", metavar="[PATTERN]", required=False)
@click.option("--name", "name_glob", metavar="GLOB", help="only models whose name matches GLOB")
@click.option("--kind", metavar="KIND", help=f"only models of this kind: {_kinds()}")
@click.option(
    "--measure",
    is_flag=True,
    help="build and measure every model now instead of reading the catalogue (a minute)",
)
def zoo_list(pattern, name_glob, kind, measure):
    """Every model: kind, preset input, weight layers, parameters and forward FLOPs.

    A row is printed as soon as it is known; the figures come from the catalogue
    (shared/model_catalog.json), so no model is built unless it has none there.
    PATTERN (or --name) is a glob such as 'resnet*'; a plain word matches anywhere.

    \b
    Example: deepfield zoo list --kind image_classifier 'resnet*'
    """
    from pipelines.zoo import listing_lines

    if pattern and name_glob:
        raise click.UsageError("give the name pattern once: PATTERN or --name")
    for line in listing_lines(kind=kind, pattern=pattern or name_glob, measure_all=measure):
        click.echo(line)  # flushed line by line: the first rows come before any model builds


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
    """One model's description and Keras summary (built at its preset, or --set).

    \b
    Example: deepfield zoo show resnet18 --set num_classes=10
    """
    from pipelines.zoo import show_model

    click.echo(show_model(name, list(overrides)))


# === runs ===
@cli.group(cls=NamingGroup)
def runs() -> None:
    """The runs under a folder, as a table, without opening them.

    \b
    Example: deepfield runs list --sort roc_auc
    """


@runs.command("list")
@click.argument("folder", metavar="[DIR]", default="runs", type=click.Path(path_type=Path))
@click.option("--domain", help="only runs of this domain (vision, finance, ...)")
@click.option("--task", help="only runs of this task (classify, credit, ...)")
@click.option("--sort", "sort", metavar="METRIC", help="best first by METRIC (see above)")
@click.option("--json", "as_json", is_flag=True, help="a JSON array of the rows, every metric")
def runs_list(folder, domain, task, sort, as_json):
    """The runs under DIR (default runs/) as a table, one row per run.

    Columns: folder, domain, task, data, model, status, wall time, date and headline
    metrics. Broken or unfinished runs are listed with their status and what is wrong.

    --sort orders METRIC descending, except loss-like metrics (loss, hd95, perplexity,
    ece, brier, cost, *_diff, ...), which go ascending; runs without it come last.

    \b
    Example: deepfield runs list --domain finance --sort roc_auc
    """
    import json

    from pipelines.runs import list_runs, print_listing

    rows = list_runs(folder, domain=domain, task=task, sort=sort)
    click.echo(json.dumps(rows, indent=2) if as_json else print_listing(rows, folder, sort))


@runs.command("compare")
@click.argument("run_paths", metavar="RUN RUN...", nargs=-1, required=True)
@click.option(
    "--dir",
    "folder",
    default="runs",
    type=click.Path(path_type=Path),
    show_default=True,
    help="where names as `runs list` prints them are looked up",
)
@click.option("--json", "as_json", is_flag=True, help="the comparison as one JSON object")
def runs_compare(run_paths, folder, as_json):
    """Config differences (each run's value) and metrics side by side. Runs of
    different domains compare the keys they share and name the rest.

    \b
    Example:
      deepfield runs compare finance/credit/20261130-085747 finance/credit/20261130-091002
    """
    import json

    from pipelines.runs import compare_runs, comparison_text

    result = compare_runs(list(run_paths), folder)
    click.echo(json.dumps(result, indent=2) if as_json else comparison_text(result))


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
