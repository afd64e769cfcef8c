"""The Python side of the Java job's parser: ``python -m freshrank.trends.flink.helper BLOCKED.json``.

The Java fast path (``java/trend-job``: ASCII hashtags, ``…Z`` times, integer epochs) handles what is certain
without Python; the posts it cannot decide (HTML entities, the fullwidth sign, non-ASCII hashtags, other time
formats) come here, one JSON request per line, and get the reference answer: ``{"text": …}`` → the
``[key, spelling]`` pairs of ``rows.PostTags``; ``{"created_at": …}`` → epoch ms of ``rows.PostTime`` (0:
unreadable).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from freshrank.trends.flink.rows import PostTags, PostTime


def serve(blocked: list[str]) -> None:
    """Answer requests from stdin until it closes."""
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


if __name__ == "__main__":
    serve(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
