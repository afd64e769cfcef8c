"""Run benchmark sections and merge their figures into ``bench-results.json`` at the repo root.

Usage: ``python -m freshrank.bench [SECTION ...]``. A section is a module ``freshrank.bench.<name>`` with
``run() -> dict``; several modules may feed one section of the JSON (``SECTIONS`` below).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from freshrank.console import err, setup_logging

SECTIONS: dict[str, tuple[str, ...]] = {
    "trends": ("trends", "flink", "flink_stream"),
    "classify": ("classify",),
    "engines": ("engines",),
    "search": ("search",),
    "concurrency": ("concurrency",),
    "soak": ("soak",),
}
RESULTS = Path("bench-results.json")


def main(argv: list[str]) -> int:
    setup_logging()
    wanted = argv or list(SECTIONS)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for section in wanted:
        figures: dict[str, object] = dict(results.get(section, {}))
        for name in SECTIONS.get(section, (section,)):
            try:
                module = importlib.import_module(f"freshrank.bench.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"freshrank.bench.{name}":
                    raise
                err.print(f"[yellow]bench {name}: not available[/]")
                continue
            err.rule(f"bench: {section}/{name}")
            figures.update(module.run())
        results[section] = figures
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
