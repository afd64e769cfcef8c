"""Where a batch of posts goes in the engine's windows: the tick each post is counted at, the late posts, and
the runs of posts that go to one bucket at one tick (see ``engine.py`` for the semantics).

Shared by ``TrendEngine`` and the replay's worker processes, which plan their block as if it were the
first batch the engine sees; the engine uses such a plan as it is when its own ticks for the block come out
the same (they do unless an earlier block reached a later event time), so both always count the same way.
Imports only numpy, so workers start fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EMPTY = np.zeros(0, dtype=np.intp)


@dataclass(slots=True)
class Run:
    """Posts counted in one bucket at one tick; ``bucket`` None: the tick moves and nothing is counted."""

    tick: int
    bucket: int | None
    posts: np.ndarray | None  # positions of the counted posts (dropped once the run is counted)
    authors: np.ndarray  # positions of the counted posts that have an author


@dataclass(slots=True)
class Plan:
    newest: int  # the newest event time once the batch is in
    ticks: np.ndarray  # the tick at which each post arrives
    late: int
    counted: int
    runs: list[Run]


def plan_batch(
    times: np.ndarray,
    tagged: np.ndarray,
    authored: np.ndarray,
    max_ms: int,
    k: int,
    slide_ms: int,
    lateness_ms: int,
    n: int,
) -> Plan:
    """The plan of a batch in arrival order, given the newest event time ``max_ms`` and tick ``k`` so far.

    The tick moves when the newest event time so far passes the next tick plus the lateness; a tagged post
    whose bucket is at or before ``tick − n`` is late. Runs are cut where the tick moves and, among the
    counted posts, where the bucket changes.
    """
    newest = np.maximum.accumulate(times)
    np.maximum(newest, max_ms, out=newest)
    ticks = (newest - lateness_ms) // slide_ms
    np.maximum(ticks, k, out=ticks)
    buckets = -(-times // slide_ms)
    late = tagged & (buckets <= ticks - n)
    counted = tagged & ~late
    with_user = counted & authored
    total = len(times)
    moves = (np.flatnonzero(ticks[1:] != ticks[:-1]) + 1).tolist()
    runs = []
    for start, stop in zip([0, *moves], [*moves, total], strict=True):
        tick = int(ticks[start])
        index = np.flatnonzero(counted[start:stop]) + start
        if not len(index):
            runs.append(Run(tick, None, None, _EMPTY))
            continue
        run_buckets = buckets[index]
        cuts = (np.flatnonzero(run_buckets[1:] != run_buckets[:-1]) + 1).tolist()
        for first, last in zip([0, *cuts], [*cuts, len(index)], strict=True):
            posts = index[first:last]
            runs.append(Run(tick, int(run_buckets[first]), posts, posts[with_user[posts]]))
    return Plan(
        newest=int(newest[-1]) if total else max_ms,
        ticks=ticks,
        late=int(np.count_nonzero(late)),
        counted=int(np.count_nonzero(counted)),
        runs=runs,
    )
