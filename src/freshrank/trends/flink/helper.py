"""The Python side of the Java job: ``python -m freshrank.trends.flink.helper SPEC.json`` parses posts,
``… SPEC.json --store`` writes windows to the spec's trend store (the job starts both; SPEC.json is its
``FlinkJobSpec``).

Parsing: the Java fast path (``java/trend-job``: ASCII hashtags, ``…Z`` times, integer epochs) handles what
is certain without Python; the posts it cannot decide (HTML entities, the fullwidth sign, non-ASCII hashtags,
other time formats) come here, one JSON request per line, and get the reference answer: ``{"text": …}`` →
the ``[key, spelling]`` pairs of ``rows.PostTags``; ``{"created_at": …}`` → epoch ms of ``rows.PostTime``
(0: unreadable).

Store (the deployed job, ``store_in_job``): each line is a fired window (``end``, ``posts``, ``last``,
``rows``); its trends (labels from Python, as the engine's) replace the snapshot, or, bounded, only the
window at the last post is written, when the job ends.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from freshrank.trends.flink.rows import PostTags, PostTime, window_trends
from freshrank.trends.flink.spec import FlinkJobSpec
from freshrank.trends.stores import open_trend_store


def serve(blocked: list[str]) -> None:
    """Answer parse requests from stdin until it closes."""
    tags, post_time = PostTags(blocked), PostTime()
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        if "text" in request:
            answer: object = [list(pair) for pair in tags(request["text"])]
        else:
            answer = post_time(request["created_at"], "")
        out.write(json.dumps(answer) + "\n")
        out.flush()


def store_windows(url: str, ttl_seconds: int, bounded: bool) -> None:
    """Write the windows read from stdin to the trend store at ``url``."""
    store = open_trend_store(url, ttl_seconds)
    final: dict[str, Any] | None = None
    try:
        for line in sys.stdin:
            window = json.loads(line)
            if not bounded:
                store.replace(window_trends(window))
            elif window["end"] == window["last"]:
                final = window
        if bounded:
            store.replace(window_trends(final) if final is not None else [])
    finally:
        store.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="freshrank.trends.flink.helper")
    parser.add_argument("spec", help="the job's FlinkJobSpec (JSON)")
    parser.add_argument("--store", action="store_true", help="write windows to the spec's store_url")
    args = parser.parse_args(argv)
    spec = FlinkJobSpec.model_validate_json(Path(args.spec).read_text(encoding="utf-8"))
    if not args.store:
        serve(spec.trends.block_list)
    elif spec.store_url is None:
        parser.error("the spec has no store_url")
    else:
        store_windows(spec.store_url, spec.ttl_seconds, spec.bounded)


if __name__ == "__main__":
    main(sys.argv[1:])
