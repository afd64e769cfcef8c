"""glibc malloc in the API server (serve/memory.py): arenas limited, freed memory given back by the trim,
the trimming thread started and stopped; the soak (`make bench` section soak) measures the RSS over time."""

from __future__ import annotations

import platform
import threading
import time

import psutil
import pytest

from freshrank.serve.memory import Trimmer, limit_arenas, trim

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


@glibc
def test_arenas_are_limited_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas(0) is False  # glibc's default kept
    assert limit_arenas(2) is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas(2) is False  # glibc read the variable at start-up: left to it


@glibc
def test_trim_gives_back_what_a_thread_freed() -> None:
    """80 MB of small blocks freed in a thread, one block kept at the end of its heap: malloc keeps the pages
    (the kept block pins the top) until ``trim``."""
    kept: list[bytearray] = []

    def allocate_and_free() -> None:
        blocks = [bytearray(16_000) for _ in range(5_000)]
        kept.append(bytearray(16_000))
        del blocks

    thread = threading.Thread(target=allocate_and_free)
    thread.start()
    thread.join()
    before = psutil.Process().memory_info().rss
    assert trim() is True
    freed = before - psutil.Process().memory_info().rss
    assert freed > 40 * 2**20, f"trim gave back only {freed / 2**20:.1f} MB"


@glibc
def test_the_trimmer_trims_until_stopped() -> None:
    trimmer = Trimmer(0.01).start()
    deadline = time.monotonic() + 30
    while trimmer.trims < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    trimmer.stop()
    assert trimmer.trims >= 2
    assert not trimmer._thread.is_alive()


def test_a_trimmer_at_zero_starts_no_thread() -> None:
    trimmer = Trimmer(0).start()
    assert not trimmer._thread.is_alive()
    trimmer.stop()
