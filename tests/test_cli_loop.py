"""The real CLI: load → refresh → search, with --json documents, exit codes and hostile input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freshrank.cli import EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE, app

FRESHRANK = Path(sys.executable).parent / "freshrank"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # Raw scores: a per-label z-score over 8 movies singles none out (tests/test_demo.py runs the default).
    return {
        "FRESHRANK_STATE_DIR": str(tmp_path / "state"),
        "HF_HUB_OFFLINE": "1",
        "FRESHRANK_SEARCH__CALIBRATION": "none",
    }


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _json(stdout: str) -> dict[str, object]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout  # exactly one JSON document on stdout
    return dict(json.loads(lines[0]))


def test_load_refresh_search_loop(env: dict[str, str], small_catalog_file: Path) -> None:
    code, out, _ = _run(env, "load", "--input", str(small_catalog_file), "--json")
    assert code == 0 and _json(out)["indexed"] == 8

    code, out, _ = _run(env, "refresh", "--trend", "#Christmas", "--trend", "#zombies", "--json")
    first = _json(out)
    assert code == 0 and first["scored"] == ["christmas", "zombies"] and first["pairs"] == 16
    code, out, _ = _run(env, "refresh", "--trend", "#christmas", "--trend", "#zombies", "--json")
    assert (
        code == 0 and _json(out)["scored"] == [] and _json(out)["already_scored"] == ["christmas", "zombies"]
    )

    code, out, _ = _run(
        env, "search", "", "--genre", "Family", "--trend", "#christmas", "--limit", "3", "--json"
    )
    doc = _json(out)
    results = doc["results"]
    assert code == 0 and isinstance(results, list) and len(results) == 3
    assert set(results[0]) == {"id", "title", "text_score", "trend_scores", "score"}
    assert results[0]["id"] in {1, 2, 8} and set(results[0]["trend_scores"]) == {"christmas"}
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)

    code, out, _ = _run(env, "search", "santa", "--trend", "#christmas")  # the rich table
    assert code == 0 and "christmas" in out and "Polar Express" in out


@pytest.mark.parametrize(
    "text",
    ['"unbalanced', "christ* NEAR(a b) -horror AND", "'; DROP TABLE movies; --", "x" * 20_000, "🎄\u202e"],
)
def test_search_takes_any_text(env: dict[str, str], small_catalog_file: Path, text: str) -> None:
    _run(env, "load", "--input", str(small_catalog_file))
    code, out, _ = _run(env, "search", text, "--no-trends", "--json")
    assert code == 0 and isinstance(_json(out)["results"], list)


def test_load_reports_bad_rows_and_fails_on_unreadable_files(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "movies.jsonl"
    path.write_text('{"id": 1, "title": "Elf", "overview": "Elves."}\n{broken\n{"id": 2}\n', encoding="utf-8")
    code, out, err = _run(env, "load", "--input", str(path), "--json")
    doc = _json(out)
    assert code == 0 and doc["indexed"] == 1 and [e["line"] for e in doc["errors"]] == [2, 3]  # type: ignore[index]
    assert "line 2" in err
    code, _, err = _run(env, "load", "--input", str(tmp_path / "nope.jsonl"))
    assert code == EXIT_USAGE and "not found" in err
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("{broken\n", encoding="utf-8")
    assert _run(env, "load", "--input", str(only_bad))[0] == EXIT_ERROR


def test_unavailable_backend_and_classifier_exit_3(env: dict[str, str], small_catalog_file: Path) -> None:
    bad_backend = {**env, "FRESHRANK_SEARCH_URL": "nosuch://x"}
    code, _, err = _run(bad_backend, "search", "elf")
    assert code == EXIT_UNAVAILABLE and "search backend unavailable" in err
    _run(env, "load", "--input", str(small_catalog_file))
    no_model = {**env, "FRESHRANK_CLASSIFIER__NAME": "v-does-not-exist"}
    code, out, err = _run(no_model, "refresh", "--trend", "#christmas", "--json")
    assert code == EXIT_UNAVAILABLE and _json(out)["failed"] and "classifier unavailable" in err


def test_installed_freshrank_script(env: dict[str, str], small_catalog_file: Path) -> None:
    """The console script itself (a subprocess), as a user or cron job runs it."""
    full_env = {**os.environ, **env}
    subprocess.run(
        [str(FRESHRANK), "load", "--input", str(small_catalog_file)],
        env=full_env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(
        [str(FRESHRANK), "search", "dinosaurs", "--no-trends", "--json"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["title"] == "Jurassic Park"
    help_text = subprocess.run(
        [str(FRESHRANK), "search", "--help"], capture_output=True, text=True, timeout=300
    )
    assert "--trend" in help_text.stdout and "--genre" in help_text.stdout


def test_module_entry_point_lists_every_stage() -> None:
    """`python -m freshrank.cli` works like the `freshrank` script (no circular import of the stages)."""
    done = subprocess.run(
        [sys.executable, "-m", "freshrank.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for command in ("load", "refresh", "search", "trends", "train", "models", "evaluate", "monitor"):
        assert command in done.stdout


def test_cli_metrics_reach_the_textfile_collector(
    env: dict[str, str], small_catalog_file: Path, tmp_path: Path
) -> None:
    """A command's metrics outlive it: written for node-exporter's textfile collector, labelled by command."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics_dir = tmp_path / "textfile"
    env = {**env, "FRESHRANK_METRICS_TEXTFILE_DIR": str(metrics_dir)}
    _run(env, "load", "--input", str(small_catalog_file))
    code, _, _ = _run(env, "refresh", "--trend", "#dinosaurs", "--json")
    assert code == 0
    text = (metrics_dir / "freshrank_refresh.prom").read_text(encoding="utf-8")
    samples = {
        (s.name, s.labels.get("command")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("freshrank_trending_labels", "refresh")] == 1.0
    assert samples[("freshrank_refresh_last_success_timestamp_seconds", "refresh")] > 0
    assert all(command == "refresh" for _, command in samples)
    assert (metrics_dir / "freshrank_load.prom").exists()  # every command writes its own file
