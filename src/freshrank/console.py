"""Terminal output shared by every command: logs and progress on stderr, results on stdout."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")

err = Console(stderr=True)
out = Console()


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True
    )
    for noisy in (
        "httpx",
        "urllib3",
        "opensearch",
        "elasticsearch",
        "elastic_transport",
        "kafka",
        "transformers",
        "sentence_transformers",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def print_json(obj: Any) -> None:
    """Exactly one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def progress() -> Progress:
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    with progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
