"""The ``freshrank`` command line. Each stage registers its own commands from ``<stage>/commands.py``."""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from freshrank.config import cli_settings
from freshrank.console import err, setup_logging
from freshrank.exitcodes import EXIT_ERROR, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, Unreachable
from freshrank.metrics import write_textfile

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "app", "main"]

STAGES = ("catalog", "trends", "classify", "search", "loop", "evaluate", "train", "monitor", "serve")
# Each module has ``register(app)``; a stage without commands simply has no module.
COMMAND_MODULES = tuple(f"freshrank.{stage}.commands" for stage in STAGES) + ("freshrank.demo",)

app = typer.Typer(
    name="freshrank",
    help="Keep search rankings fresh: trending hashtags boost movie search through zero-shot NLI scores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr."),
) -> None:
    setup_logging(verbose)
    if ctx.invoked_subcommand:
        ctx.call_on_close(lambda: _export_metrics(str(ctx.invoked_subcommand)))


def _export_metrics(command: str) -> None:
    """The command's Prometheus metrics to node-exporter's textfile directory, when one is configured."""
    try:
        directory = cli_settings().metrics_textfile_dir
        if directory is not None:
            write_textfile(directory, command)
    except Exception as exc:  # bad settings or an unwritable directory cost the metrics, not the result
        err.print(f"[yellow]warning:[/] metrics not written: {exc}")


def _register_stages() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register_stages()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Unreachable as exc:  # a server went away in the middle of a command
        err.print(f"[red]error:[/] {exc}")
        sys.exit(EXIT_UNAVAILABLE)
    except Exception as exc:  # last resort: one clear line, the traceback only with -v
        logging.getLogger("freshrank").debug("unhandled error", exc_info=True)
        err.print(f"[red]error:[/] {exc}")
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
