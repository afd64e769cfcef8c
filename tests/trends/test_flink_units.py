"""The Flink job's parts that must equal the Python reference (score, extractor, times), its plain-Python
parts and the launcher's checks (no mini-cluster: these run in seconds)."""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from freshrank.config import Settings
from freshrank.trends.extract import class_table, extract_hashtags
from freshrank.trends.flink import launcher
from freshrank.trends.flink.cli import register
from freshrank.trends.flink.launcher import FlinkUnavailable, run_trend_job, stage_input
from freshrank.trends.flink.rows import UNREADABLE, PostTags, PostTime, TopRow
from freshrank.trends.flink.spec import KafkaTopic
from freshrank.trends.score import BurstModel
from freshrank.trends.simulate import load_texts
from freshrank.trends.sources.replay import parse_time_ms
from tests.trends.test_flink_job import generate_posts


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-24T08:00:00.250Z", 1798099200250),
        ("2026-12-24T10:00:00+02:00", 1798099200000),
        ("2026-12-24T08:00:00", 1798099200000),  # naive = UTC
        ("1798099200250", 1798099200250),  # epoch ms as the JSON number's text
        ("1798099200.25", 1798099200250),  # epoch seconds
        ("1.79809920025E12", 1798099200250),  # how a JSON number may reach a STRING column
    ],
)
def test_post_time_reads_the_formats_the_replay_reads(raw: str, expected: int) -> None:
    assert PostTime()(raw, "text") == expected


@pytest.mark.parametrize("raw", ["yesterday", "", "NaN", "inf", "0", "-5", None])
def test_post_time_rejects_unreadable_times(raw: str | None) -> None:
    post_time = PostTime()
    assert post_time(raw, "text") == UNREADABLE
    assert post_time.bad == 1


def test_post_tags_counts_a_key_once_keeps_the_first_spelling_and_blocks() -> None:
    tags = PostTags(["#Spam", "ＮＯＰＥ"])
    assert list(tags("#Love #love #LOVE #café #spam #SPAM https://x.org/#frag #'; DROP")) == [
        ("love", "Love"),
        ("café", "café"),
    ]
    assert list(tags(None)) == [] and list(tags("#" + "x" * 10_000)) == []


def test_top_row_becomes_a_trend_with_a_label() -> None:
    trend = TopRow(0, "sharkweek", "SharkWeek", 7, 2, 4, 7, 1.5, 1).to_trend()
    assert (trend.hashtag, trend.label, trend.count, trend.baseline, trend.authors) == (
        "#SharkWeek",
        "shark week",
        7,
        2.0,
        4,
    )
    assert TopRow(0, "x", "x", 7, 2, 0, 0, 1.5, 1).to_trend().authors is None  # source without authors


def test_a_missing_flink_virtualenv_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHRANK_FLINK_VENV", str(tmp_path / "nowhere"))
    posts = tmp_path / "posts.jsonl"
    posts.write_text("")
    with pytest.raises(FlinkUnavailable, match="make flink-venv"):
        run_trend_job(posts, None, Settings(state_dir=tmp_path))


def test_a_missing_connector_jar_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHRANK_DOWNLOAD_CACHE", str(tmp_path))
    with pytest.raises(FlinkUnavailable, match="flink-jars.sh"):
        launcher.kafka_connector_jar()


def test_kafka_down_or_a_missing_topic_is_a_clear_error() -> None:
    with pytest.raises(FlinkUnavailable, match="127.0.0.1:1 is unreachable: .*bootstrap"):
        launcher.check_kafka(KafkaTopic(topic="t", bootstrap="127.0.0.1:1"), timeout_s=2)
    with pytest.raises(FlinkUnavailable, match="does not exist"):  # the real broker of scripts/kafka.sh
        launcher.check_kafka(KafkaTopic(topic=f"freshrank-test-missing-{uuid.uuid4().hex}"))


def test_input_is_staged_under_a_plain_name_and_gz_is_decompressed(tmp_path: Path) -> None:
    import gzip

    hidden = tmp_path / "_posts.jsonl.gz"  # Flink's file source would skip a name starting with '_'
    with gzip.open(hidden, "wt") as fh:
        fh.write('{"text": "#a", "created_at": 1}\n')
    staged = stage_input(hidden, tmp_path / "work")
    assert staged.name == "posts.jsonl" and staged.read_text() == '{"text": "#a", "created_at": 1}\n'
    with pytest.raises(FileNotFoundError):
        stage_input(tmp_path / "missing.jsonl", tmp_path / "work2")


def _cli() -> typer.Typer:
    trends = typer.Typer()
    register(trends)
    return trends


def test_cli_needs_exactly_one_source(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(_cli(), ["flink"]).exit_code == 2
    both = runner.invoke(_cli(), ["flink", "--input", str(tmp_path), "--kafka-topic", "t"])
    assert both.exit_code == 2
    missing = runner.invoke(_cli(), ["flink", "--input", str(tmp_path / "missing.jsonl")])
    assert missing.exit_code == 2 and "input not found" in missing.output


def test_cli_reports_an_unreachable_broker_with_exit_code_3(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"text": "#a", "created_at": 1}) + "\n")
    result = CliRunner().invoke(
        _cli(), ["produce", "--input", str(posts), "--topic", "t", "--bootstrap", "127.0.0.1:1", "--json"]
    )
    assert result.exit_code == 3
    assert "Kafka unavailable" in result.output and "unreachable" in result.output


def _java_check(mode: list[str], values: list[object]) -> list[object]:
    """Run the job's ``freshrank.flink.Check`` on JSON values, one per line (what the tests pin)."""
    classpath = ":".join(str(p) for p in launcher.job_classpath())
    lines = "".join(json.dumps(v) + "\n" for v in values)
    done = subprocess.run(
        ["java", "-cp", classpath, "freshrank.flink.Check", *mode],
        input=lines,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_java_score_is_the_python_burst_test() -> None:
    model = BurstModel(prior_share=1e-4, posts_per_author=3, min_z=5.0)
    rng = random.Random(5)
    grid = [
        [
            rng.randrange(0, 5000),
            rng.choice([-1, 0, 1, 2, 50, 4000]),
            rng.randrange(0, 5000),
            v,
            rng.randrange(0, 10**6),
        ]
        for v in (0, 1, 999, 250_000, 10**6)
        for _ in range(200)
    ]
    java = _java_check(["score", "0.0001", "3"], grid)
    for (count, authors, baseline, volume, prev_volume), (x, lam, z) in zip(grid, java, strict=True):
        evidence = model.evidence(count, None if authors < 0 else authors)
        expected = model.expected(baseline, volume, prev_volume)
        assert x == evidence
        assert lam == pytest.approx(expected, rel=1e-12)
        assert z == pytest.approx(model.z(evidence, expected), rel=1e-12, abs=1e-12)


TRICKY_TEXTS = [
    "#Love #love #LOVE #café #spam https://x.org/#frag #'; DROP",
    "caf&eacute; #tag &amp; #x",
    "＃fullwidth #a",
    "x#notag a#b _#c @#d /#e #1 #_1a #a_b",
    "www.example.com/#x and #real, plus ftp://h/#no #yes.",
    "émoji😀#tag 😀 #tag2 #ok️ #日本 #naïve",
    "#" + "x" * 101 + " #short",
    "tab\t#t\u200c #zw\u200dj http://u.rl/#x\u3000#after",
]


def test_the_java_extractor_equals_the_python_one_where_it_decides() -> None:
    posts = [line for line in generate_posts(seconds=300) if line.startswith('{"text"')]
    texts = TRICKY_TEXTS + [json.loads(line)["text"] for line in posts]
    tweets = Settings().tweets_path
    if tweets.exists():  # the shared data set: tens of thousands of real tweets, half of them non-ASCII
        texts += load_texts(tweets)
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "table.bin"
        table.write_bytes(class_table())
        java = _java_check(["tags", str(table)], texts)
    decided = [(text, tags) for text, tags in zip(texts, java, strict=True) if tags is not None]
    for text, tags in decided:
        assert tags == extract_hashtags(text), text
    assert len(decided) > 0.9 * len(texts)  # Python's helper gets the rest (entities, ＃, Unicode tags)
    assert java[0] is None and java[1] is None and java[2] is None  # non-ASCII tag, entities, ＃
    assert java[3] == extract_hashtags(TRICKY_TEXTS[3]) and java[4] == ["real", "yes"]


def test_the_java_time_parser_equals_the_replay_where_it_decides() -> None:
    values = [
        "2026-12-24T08:00:00.250Z",
        "2026-12-24T08:00:00Z",
        "2024-02-29T23:59:59.999Z",
        "2023-02-29T00:00:00Z",  # no such day: Python decides (and rejects)
        "2026-12-24T24:00:00Z",
        "2026-12-24T08:00:00+02:00",
        "2026-12-24T08:00:00",
        "0001-01-01T00:00:00Z",
        "yesterday",
        "2026-12-24T08:00:00.25Z",
    ]
    java = _java_check(["time"], values)
    for value, ms in zip(values, java, strict=True):
        if ms is not None:
            assert ms == parse_time_ms(value), value
    assert java[:3] == [parse_time_ms(v) for v in values[:3]] and java[3:6] == [None, None, None]
