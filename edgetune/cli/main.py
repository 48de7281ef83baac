"""`edgetune` entry point: the command group, one-line errors, --debug tracebacks."""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import click

from edgetune import __version__
from edgetune.cli import bench, farm, inspect, predict, profile, report, search, targets, zoo
from edgetune.cli import compile as compile_verb
from edgetune.errors import EdgetuneError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgetune")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """edgetune: compile, measure and pick the fastest artifact for an edge device."""


for module in (targets, inspect, compile_verb, bench, zoo, farm, report, profile, predict, search):
    cli.add_command(module.command)


_OWN = str(Path(__file__).resolve().parent.parent)
_python_show = warnings.showwarning


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """edgetune's own warnings (what a user should know, and the command that fixes it) as one `Warning: ...`
    line, not Python's file:line form; anything else's as Python shows it."""
    if issubclass(category, UserWarning) and str(Path(filename).resolve()).startswith(_OWN):
        click.echo(f"Warning: {message}", err=True)
    else:
        _python_show(message, category, filename, lineno, file, line)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the CLI; user errors print one `Error: ...` line and exit non-zero, warnings one `Warning: ...`
    line (Python's form with --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    with warnings.catch_warnings():  # the one-line form for this call only (tests run main() in-process)
        if not debug:
            warnings.showwarning = _show_warning
        _run(args, debug)


def _run(args: list[str], debug: bool) -> None:
    try:
        cli.main(args=args, prog_name="edgetune", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("Interrupted: measurements finished so far are kept in the results store.", err=True)
        sys.exit(130)
    except EdgetuneError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
