"""The detection benchmark on a small stream: injected bursts found, spam not, the former score noisier."""

from __future__ import annotations

import random

from typer.testing import CliRunner

from freshrank.cli import app
from freshrank.config import TrendSettings
from freshrank.trends.detect import StreamSpec, detect, make_bursts, make_stream
from freshrank.trends.score import VelocityModel


def test_bursts_are_found_spam_is_not_and_the_velocity_score_is_noisier() -> None:
    spec = StreamSpec(hours=2.5, rate_per_s=2.0, users=300, sizes=(60,), repeats=2, spam=1, seed=5)
    settings = TrendSettings(window_seconds=600, slide_seconds=10, allowed_lateness_seconds=0)
    rng = random.Random(spec.seed)
    texts = [f"post {i} #tag{i % 40}" + (" #extra" if i % 7 == 0 else "") for i in range(400)]
    bursts = make_bursts(spec, rng)
    assert [b.shape for b in bursts] == ["sudden", "sudden", "gradual", "gradual", "spam"]
    posts = make_stream(texts, spec, bursts, rng)
    assert [p[0] for p in posts] == sorted(p[0] for p in posts)
    after = detect(posts, bursts, settings, None, "after", spec.hours)
    before = detect(posts, bursts, settings, VelocityModel(), "before", spec.hours)
    assert after.recall == 1.0 and after.spam_trended == 0
    assert after.median_minutes_to_detect is not None and after.median_minutes_to_detect < 30
    assert before.false_trends_per_hour > after.false_trends_per_hour
    assert after.precision > before.precision


def test_the_command_refuses_a_stream_too_short_for_the_warm_up() -> None:
    result = CliRunner().invoke(app, ["trends", "bench-detect", "--hours", "1.5"])
    assert result.exit_code == 2 and "warm-up" in result.stderr
