"""The embedded engine: windows, scoring, late events, memory bounds, authors, block list."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from freshrank.config import TrendSettings
from freshrank.trends.engine import Post, TrendEngine
from freshrank.trends.score import BurstModel, burst_z, p_value

T0 = 1_800_000_000  # an epoch second that is a multiple of every slide used here


def small(**overrides: object) -> TrendSettings:
    base: dict[str, object] = dict(
        window_seconds=60,
        slide_seconds=10,
        allowed_lateness_seconds=0,
        min_count=1,
        min_authors=1,
        top_n=10,
        min_z=-1e9,  # every counted tag is ranked (the window tests look at all of them)
    )
    base.update(overrides)
    return TrendSettings(**base)  # type: ignore[arg-type]


def post(second: float, *tags: str, user: str | None = None) -> Post:
    return Post(text=" ".join(f"#{t}" for t in tags), created_at=T0 + second, user=user)


def test_score_formula() -> None:
    # signed root of the Poisson likelihood-ratio statistic
    assert burst_z(50, 10.0) == pytest.approx(math.sqrt(2 * (50 * math.log(5) - 40)))
    assert burst_z(3, 8.0) == pytest.approx(-math.sqrt(2 * (3 * math.log(3 / 8) + 5)))
    assert burst_z(0, 2.0) == pytest.approx(-2.0) and burst_z(4, 4.0) == 0.0
    assert p_value(0.0) == pytest.approx(0.5) and p_value(5.0) == pytest.approx(2.8665e-7, rel=1e-4)
    model = BurstModel(prior_share=0.01, posts_per_author=3, min_z=5)
    # own history rescaled by the stream's volume change, plus the volume prior
    assert model.expected(30, 999, 499) == pytest.approx(30 * 1000 / 500 + 0.01 * 1000)
    assert model.evidence(200, 1) == 3 and model.evidence(200, None) == 200 and model.evidence(5, 10) == 5


def test_window_is_right_closed_and_baseline_is_previous_window() -> None:
    engine = TrendEngine(small())
    # window (T0+60, T0+120] is current, (T0, T0+60] the baseline; T0 itself is older than both
    for second in (0, 0.001, 60, 60.001, 119.999, 120):
        engine.add(post(second, "a"))
    engine.finish()
    assert engine.tick == datetime.fromtimestamp(T0 + 120, tz=UTC)
    assert engine.counts("a") == (3, 2)
    (trend,) = engine.top()
    expected = 2 * (3 + 1) / (2 + 1) + 1e-4 * 4  # V = 3 hashtag uses now, Vp = 2 before
    assert (trend.count, trend.baseline, trend.expected) == (3, 2.0, pytest.approx(expected))
    assert trend.score == pytest.approx(burst_z(3, expected))


Events = list[tuple[int, list[str]]]


def brute_force(events: Events, tick_ms: int, window_ms: int) -> dict[str, tuple[int, int]]:
    cur: Counter[str] = Counter()
    prev: Counter[str] = Counter()
    for ms, tags in events:
        for tag in {t.casefold() for t in tags}:
            if tick_ms - window_ms < ms <= tick_ms:
                cur[tag] += 1
            elif tick_ms - 2 * window_ms < ms <= tick_ms - window_ms:
                prev[tag] += 1
    return {tag: (cur[tag], prev[tag]) for tag in cur | prev}


@pytest.mark.parametrize("lateness", [0, 30])
def test_agrees_with_a_brute_force_recount_at_every_tick(lateness: int) -> None:
    rng = random.Random(lateness)
    settings = small(allowed_lateness_seconds=lateness)
    engine = TrendEngine(settings)
    tags = ["Alpha", "alpha", "beta", "gamma", "delta"]
    events: list[tuple[int, list[str]]] = []
    times = sorted(rng.uniform(0, 400) for _ in range(600))
    # bounded out-of-orderness: arrival order jittered by less than the allowed lateness
    arrivals = sorted(times, key=lambda s: s + rng.uniform(0, lateness))
    for i, second in enumerate(arrivals):
        chosen = rng.sample(tags, rng.randint(1, 3))
        ms = round((T0 + second) * 1000)
        engine.add_tags(ms, chosen)
        events.append((ms, chosen))
        if i % 7:
            continue
        tick_ms = int(engine.tick.timestamp() * 1000)  # type: ignore[union-attr]
        expected = brute_force(events, tick_ms, 60_000)
        actual = {t: engine.counts(t) for t in expected}
        assert actual == expected
    assert engine.stats.late == 0
    engine.finish()
    final_ms = int(engine.tick.timestamp() * 1000)  # type: ignore[union-attr]
    assert final_ms == math.ceil(max(e[0] for e in events) / 10_000) * 10_000
    assert {t: engine.counts(t) for t in ("alpha", "beta")} == {
        t: brute_force(events, final_ms, 60_000)[t] for t in ("alpha", "beta")
    }


def test_late_events_are_dropped_and_counted() -> None:
    engine = TrendEngine(small(allowed_lateness_seconds=20))
    engine.add(post(200, "x"))  # watermark 180: current window (120, 180], baseline (60, 120]
    engine.add(post(130, "x"))  # older than the watermark but inside the current window: counted
    engine.add(post(121, "x"))
    engine.add(post(120, "x"))  # at the window's open end: late
    engine.add(post(5, "x"))  # far behind: late
    assert engine.stats.late == 2
    assert engine.counts("x") == (2, 0)
    engine.finish()  # tick 200: the post at 200 joins, those at 121 and 130 move to the baseline
    assert engine.counts("x") == (1, 2)


def test_posts_within_lateness_wait_for_the_watermark() -> None:
    engine = TrendEngine(small(allowed_lateness_seconds=30))
    engine.add(post(100, "a"))
    assert engine.counts("a") == (0, 0)  # tick 70: the post is in the future of the current window
    engine.add(post(140, "b"))  # watermark 110 -> tick 110
    assert engine.counts("a") == (1, 0)


def test_quiet_period_longer_than_two_windows_resets_counts_and_forgets_tags() -> None:
    engine = TrendEngine(small())
    for second in range(0, 60, 5):
        engine.add(post(second, "old"))
    engine.add(post(1000, "new"))
    assert engine.counts("old") == (0, 0)
    assert engine.tracked_tags == 1
    assert engine.top()[0].hashtag == "#new"


def test_advance_to_moves_the_watermark_by_wall_clock() -> None:
    engine = TrendEngine(small())
    engine.add(post(0, "a"))
    engine.advance_to(T0 + 70)
    assert engine.counts("a") == (0, 1)


def test_min_count_and_distinct_authors() -> None:
    engine = TrendEngine(small(min_count=3, min_authors=2))
    for second in (1, 2, 3):
        engine.add(post(second, "spam", user="bot"))
    for second, user in ((1, "u1"), (2, "u2"), (3, "u1")):
        engine.add(post(second, "real", user=user))
    engine.add(post(4, "rare", user="u3"))
    engine.finish()
    assert [t.hashtag for t in engine.top()] == ["#real"]
    assert engine.top()[0].authors == 2


def test_author_rule_is_skipped_when_the_source_has_no_authors() -> None:
    engine = TrendEngine(small(min_count=2, min_authors=5))
    engine.add(post(1, "a"))
    engine.add(post(2, "a"))
    engine.finish()
    (trend,) = engine.top()
    assert trend.authors is None


def test_block_list_is_case_folded() -> None:
    engine = TrendEngine(small(block_list=["#NSFW", "spam"]))
    engine.add(post(1, "nsfw", "Spam", "ok"))
    engine.finish()
    assert [t.hashtag for t in engine.top()] == ["#ok"]


def test_burst_outranks_always_popular_and_ties_break_by_count_then_tag() -> None:
    engine = TrendEngine(small())
    for second in range(0, 120, 1):
        engine.add(post(second + 0.5, "popular"))  # 60 per window in both windows: z < 0
    for second in range(70, 80):
        engine.add(post(second, "burst"))  # 10 now, 0 before
    for tag in ("zeta", "eta"):
        for second in (61, 62):
            engine.add(post(second, tag))  # 2 now: the same z, tie broken by tag
    engine.add(post(63, "one"))
    engine.finish()
    ranking = [(t.hashtag, t.score) for t in engine.top()]
    assert [tag for tag, _ in ranking] == ["#burst", "#eta", "#zeta", "#one", "#popular"]
    assert ranking[1][1] == ranking[2][1] and ranking[-1][1] < 0


def _background(posts_per_second: int, seconds: int, tags: int = 500) -> list[Post]:
    """A steady stream: ``posts_per_second`` posts a second over ``tags`` always-present tags."""
    return [
        post(second + i / posts_per_second, f"bg{(second * posts_per_second + i) % tags}", user=f"u{i}")
        for second in range(seconds)
        for i in range(posts_per_second)
    ]


def _replay(engine: TrendEngine, posts: list[Post]) -> None:
    engine.add_many(sorted(posts, key=lambda p: p.created_at))  # type: ignore[arg-type, return-value]
    engine.finish()


def _defaults(**overrides: object) -> TrendSettings:
    """The default burst test on short windows (W = 600 s)."""
    base: dict[str, object] = dict(window_seconds=600, slide_seconds=10, allowed_lateness_seconds=0)
    base.update(overrides)
    return TrendSettings(**base)  # type: ignore[arg-type]


def test_a_seven_post_new_tag_ranks_below_a_200_post_burst_and_steady_tags_do_not_trend() -> None:
    engine = TrendEngine(_defaults(prior_share=1e-3))
    posts = _background(10, 1200)  # 12 posts per window for each of 500 tags
    posts += [post(1000 + i, "newtag", user=f"n{i}") for i in range(7)]
    # a tag that ran at 60 per window now has 200, from 150 authors
    posts += [post(700 + i * 2.5, "rising", user=f"r{i % 150}") for i in range(200)]
    posts += [post(100 + i * 8, "rising", user=f"r{i}") for i in range(60)]
    _replay(engine, posts)
    top = {t.hashtag: t for t in engine.top(1000)}
    assert list(top)[0] == "#rising"
    assert top["#rising"].baseline == 60 and top["#rising"].p_value < 1e-20
    assert "#newtag" not in top or top["#newtag"].score < top["#rising"].score
    assert not any(tag.startswith("#bg") for tag in top)  # steady popular tags do not trend


def test_one_account_posting_a_tag_200_times_never_trends() -> None:
    for min_authors in (1, 2):
        engine = TrendEngine(_defaults(min_authors=min_authors))
        posts = _background(5, 1200)
        posts += [post(900 + i, "spam", user="bot") for i in range(200)]
        posts += [post(900 + i * 5, "real", user=f"p{i}") for i in range(40)]
        _replay(engine, posts)
        top = engine.top(1000)
        assert [t.hashtag for t in top] == ["#real"], min_authors
        assert top[0].authors == 40 and top[0].evidence == 40


@pytest.mark.parametrize("scale", [1, 10])
def test_the_threshold_adapts_to_the_stream_volume(scale: int) -> None:
    """The same 120-post burst qualifies in a stream 10x larger; ten posts of a new tag do not there."""
    engine = TrendEngine(_defaults(prior_share=1e-3))
    posts = _background(scale, 1200)
    posts += [post(700 + i * 4, "burst", user=f"b{i}") for i in range(120)]
    posts += [post(1100 + i, "ten", user=f"t{i}") for i in range(10)]
    _replay(engine, posts)
    volume, _ = engine.volumes()
    tags = [t.hashtag for t in engine.top(1000)]
    assert tags[0] == "#burst"
    assert ("#ten" in tags) == (scale == 1), (volume, tags)


def test_display_form_is_the_most_common_spelling_and_counting_is_case_folded() -> None:
    engine = TrendEngine(small())
    for spelling in ("SharkWeek", "sharkweek", "SharkWeek", "SHARKWEEK"):
        engine.add(post(1, spelling))
    engine.add(Post(text="#SharkWeek #sharkweek", created_at=T0 + 2))  # one post, counted once
    engine.finish()
    (trend,) = engine.top()
    assert (trend.hashtag, trend.label, trend.count) == ("#SharkWeek", "shark week", 5)


def test_history_bins_cover_two_windows() -> None:
    engine = TrendEngine(small(window_seconds=120, slide_seconds=10))
    for second in (1, 2, 239, 240):
        engine.add(post(second, "a"))
    engine.finish()
    (trend,) = engine.top()
    assert len(trend.history) == 24 and sum(trend.history) == 4
    assert trend.history[0] == 2 and trend.history[-1] == 2


def test_distinct_tags_are_capped_by_evicting_the_least_active() -> None:
    engine = TrendEngine(small(max_tags=50))
    for i in range(20):
        engine.add(post(1 + i * 0.01, "hot"))
    for i in range(500):
        engine.add(post(2 + i * 0.01, f"rare{i}"))
    engine.add(post(15, "later"))  # the window slides: the cap is enforced at every slide
    assert engine.tracked_tags <= 50
    assert engine.stats.evicted_tags >= 450
    engine.finish()
    assert engine.top(1)[0].hashtag == "#hot"
    assert engine.counts("hot") == (20, 0)


def test_datetime_and_epoch_times_agree() -> None:
    a, b = TrendEngine(small()), TrendEngine(small())
    a.add(Post("#x", datetime.fromtimestamp(T0 + 5, tz=UTC)))
    b.add(Post("#x", T0 + 5))
    a.add(Post("#x", datetime.fromtimestamp(T0 + 6, tz=UTC).replace(tzinfo=None)))  # naive = UTC
    b.add(Post("#x", T0 + 6))
    a.finish()
    b.finish()
    assert a.top() == b.top()


def test_window_must_be_a_multiple_of_the_slide() -> None:
    with pytest.raises(ValueError, match="multiple"):
        TrendEngine(small(window_seconds=65))


def test_prehashtagged_posts_skip_extraction() -> None:
    engine = TrendEngine(small())
    engine.add(Post(text="no tags in text", created_at=T0 + 1, hashtags=["Facet"]))
    engine.finish()
    assert engine.top()[0].hashtag == "#Facet"
