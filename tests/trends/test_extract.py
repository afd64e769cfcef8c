"""Hashtag extraction: Unicode, URLs, HTML entities, punctuation, hostile input."""

from __future__ import annotations

import pytest

from freshrank.trends.extract import MAX_TAG_CHARS, extract_hashtags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Shark attack! #SharkWeek", ["SharkWeek"]),
        ("#café au lait", ["café"]),
        ("東京 #日本 #2024年", ["日本", "2024年"]),
        ("नमस्ते #हिन्दी!", ["हिन्दी"]),  # combining marks (Devanagari vowel signs) stay in the tag
        ("#ชาวไทย ok", ["ชาวไทย"]),
        ("decomposed #e\u0301te\u0301", ["e\u0301te\u0301"]),
        ("full-width ＃全角 sign", ["全角"]),
        ("We're #1 and #2024 but #2024goals", ["2024goals"]),
        (
            'end of sentence #tag. #next, #more! #why? #quote" (#paren) #dots…',
            ["tag", "next", "more", "why", "quote", "paren", "dots"],
        ),
        ("#tag's own", ["tag"]),
        ("#snake_case_tag and #_lead", ["snake_case_tag", "_lead"]),
        ("emoji #love❤️ #️⃣ #fire🔥", ["love", "fire"]),
        ("variation selector #love\ufe0f here", ["love"]),
    ],
)
def test_extracts_hashtags(text: str, expected: list[str]) -> None:
    assert extract_hashtags(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "see https://example.org/page#section now",
        "see http://example.org/#/route/x",
        "www.example.org/#frag",
        "ftp://host/path#anchor",
        "it&#39;s here &amp;#x23;nor &#39;39",
        "email me at a#b@example.org",
        "mid#word and @#mention",
        "##double",
        "# space",
        "",
    ],
)
def test_ignores_urls_entities_and_non_tags(text: str) -> None:
    assert extract_hashtags(text) == []


def test_url_then_real_tag() -> None:
    assert extract_hashtags("read https://x.org/a#b #real") == ["real"]


def test_entities_are_decoded_before_matching() -> None:
    assert extract_hashtags("caf&eacute; #caf&eacute; &amp; #tea") == ["café", "tea"]


def test_an_encoded_hash_sign_is_what_a_reader_sees() -> None:
    assert extract_hashtags("&#35;encoded and &#x23;hex") == ["encoded", "hex"]


def test_each_spelling_once_in_order() -> None:
    assert extract_hashtags("#b #a #b #A #Café #CAFÉ") == ["b", "a", "Café"]


def test_hostile_input() -> None:
    assert extract_hashtags("#'; DROP TABLE trends; --") == []
    giant = "#" + "a" * 10_000
    assert extract_hashtags(giant + " #ok") == ["ok"]
    assert extract_hashtags("#" + "b" * MAX_TAG_CHARS) == ["b" * MAX_TAG_CHARS]
    assert extract_hashtags("x " * 100_000 + "#late") == ["late"]
