"""Settings enter once per command line invocation: every step of one invocation shares one object."""

from __future__ import annotations

import click
import pytest

from freshrank.config import Settings, cli_settings


def test_one_invocation_reads_the_settings_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = Settings.__init__

    def counting(self: Settings, **values: object) -> None:
        reads.append(1)
        original(self, **values)

    monkeypatch.setattr(Settings, "__init__", counting)
    root = click.Context(click.Group("freshrank"))
    with root:
        first = cli_settings()
        with click.Context(click.Command("search"), parent=root):
            assert cli_settings() is first  # a subcommand sees the root's settings
    assert len(reads) == 1
    assert cli_settings() is not first  # outside a command: fresh settings
    assert len(reads) == 2


def test_the_environment_is_read_at_the_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHRANK_SEARCH__BOOST_WEIGHT", "0.25")
    with click.Context(click.Group("freshrank")):
        assert cli_settings().search.boost_weight == 0.25
