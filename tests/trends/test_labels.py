"""Labels: camelCase and digit splits, word segmentation of lowercase compounds, acronyms kept."""

from __future__ import annotations

import pytest

from freshrank.labels import hashtag_to_label


@pytest.mark.parametrize(
    ("tag", "label"),
    [
        ("#SharkWeek", "shark week"),
        ("#sharkweek", "shark week"),
        ("SharkWeek", "shark week"),
        ("#WWII", "WWII"),
        ("#TheWWIIMovie", "the WWII movie"),
        ("#COVID19", "COVID 19"),
        ("#2024年", "2024 年"),
        ("#日本", "日本"),
        ("#café", "café"),
        ("#IAmLegend", "i am legend"),
        ("#iamlegend", "i am legend"),
        ("#StarWars_TheForceAwakens", "star wars the force awakens"),
        ("#gameofthrones", "game of thrones"),
        ("#worldcup2018", "world cup 2018"),
        ("#christmas", "christmas"),
        ("#love", "love"),
        ("#tbt", "tbt"),
    ],
)
def test_labels(tag: str, label: str) -> None:
    assert hashtag_to_label(tag) == label


def test_unknown_compounds_are_not_chopped_into_fragments() -> None:
    # "inst a good" would be the segmenter's guess: rare short pieces make the token stay whole
    assert hashtag_to_label("#instagood") == "instagood"


def test_hostile_tags() -> None:
    assert hashtag_to_label("#'; DROP TABLE") == "DROP TABLE"
    assert hashtag_to_label("#") == ""
    assert len(hashtag_to_label("#" + "ab" * 5000)) <= 200
