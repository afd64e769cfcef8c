"""Arrows point down: no stage imports a later one (imports inside functions included).

The stages in pipeline order; leaf modules (settings, label text, Prometheus metrics, console, exit codes)
import no stage; the command line, the demo and the benchmarks sit on top and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import freshrank

PACKAGE = Path(freshrank.__file__).parent
STAGES = ("catalog", "trends", "classify", "search", "loop", "evaluate", "train", "monitor", "serve")
LEAVES = ("__init__", "config", "labels", "metrics", "console", "exitcodes", "breakers")
TOP = ("cli", "demo", "bench", "__main__")


def _rank(name: str) -> int:
    if name in LEAVES:
        return -1
    if name in TOP:
        return len(STAGES)
    return STAGES.index(name)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "freshrank":
                found |= {f"freshrank.{alias.name}" for alias in node.names}
            elif node.module.startswith("freshrank."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("freshrank.")}
    return found


def is_upward(relative: str, module: str) -> bool:
    """Whether the file at ``relative`` (under the package) importing ``module`` points up."""
    own = _rank(relative.split("/")[0].removesuffix(".py"))
    other = _rank(module.split(".")[1])
    return other > own or (own == -1 and other != -1)


def upward_imports() -> set[tuple[str, str]]:
    """(file, imported module) for every import of a later stage, or of any stage by a leaf."""
    upward = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        upward |= {(relative, module) for module in _imports(path) if is_upward(relative, module)}
    return upward


def test_every_module_belongs_to_a_known_layer() -> None:
    names = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    names.discard("__pycache__")
    assert names <= set(STAGES) | set(LEAVES) | set(TOP), names - set(STAGES) - set(LEAVES) - set(TOP)


def test_no_stage_imports_a_later_one() -> None:
    assert upward_imports() == set()


@pytest.mark.parametrize(
    ("relative", "module", "upward"),
    [
        ("search/service.py", "freshrank.loop.scores", True),  # a read reaching for the writer
        ("search/service.py", "freshrank.metrics", False),  # a leaf
        ("loop/service.py", "freshrank.search.service", False),
        ("evaluate/commands.py", "freshrank.monitor.live", True),
        ("labels.py", "freshrank.trends.base", True),  # a leaf importing a stage
        ("cli.py", "freshrank.serve.api", False),
    ],
)
def test_what_counts_as_upward(relative: str, module: str, upward: bool) -> None:
    assert is_upward(relative, module) is upward


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from freshrank.serve.api import create_app\n", encoding="utf-8")
    assert _imports(module) == {"freshrank.serve.api"}
