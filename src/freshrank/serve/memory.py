"""glibc's malloc in a threaded server process: fewer arenas, and freed memory handed back to the system.

Measured in the soak (issue 17; docs/scale-out.md, "Concurrency and soak"): an API worker's RSS crept several
MB a minute while the memory Python holds (tracemalloc) stayed flat; ``malloc_trim(0)`` called into the
running worker gave back 22-26 MB at once. The creep was memory freed to malloc and kept by it: glibc gives
each thread that allocates at the same time as another its own arena (up to 8 per core), and every arena
keeps its freed pages. A server process therefore limits the arenas before its threads start, and trims
every ``serve.malloc_trim_seconds``. Elsewhere (musl, macOS) both are no-ops; ``MALLOC_ARENA_MAX`` in the
environment is left to glibc.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


def _glibc() -> Any | None:
    """The C library when it is glibc, else None."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_arenas(arenas: int) -> bool:
    """At most ``arenas`` malloc arenas from now on (0: glibc's default); True when set."""
    libc = _glibc()
    if arenas <= 0 or libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Give the free memory of every arena back to the system; True when some was given back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


class Trimmer:
    """A daemon thread that calls ``trim`` every ``interval_s`` seconds until stopped."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.trims = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)

    def start(self) -> Trimmer:
        if self.interval_s > 0 and _glibc() is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            trim()
            self.trims += 1
