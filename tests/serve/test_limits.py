"""Limits at the edge of the servers: the API token's form, request bodies over the size limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from freshrank.config import ServeSettings, Settings
from freshrank.serve.docs import CDN, script_hashes
from freshrank.serve.security import public_message


def test_the_token_is_stripped_and_a_blank_one_refused() -> None:
    assert ServeSettings(api_token="s3cret\n").api_token == "s3cret"
    assert ServeSettings(api_token="").api_token == ""  # not configured: writes disabled
    with pytest.raises(ValidationError, match="blank"):
        ServeSettings(api_token=" \n ")


def test_a_body_over_the_limit_is_413_before_auth_or_parsing(live_server: tuple[str, Path]) -> None:
    url, _ = live_server
    big = b'{"judgments": [' + b" " * (2 << 20) + b"]}"
    # No token: a parsed request would be 401; the size is refused first.
    declared = httpx.post(f"{url}/api/judgments", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json() == {"detail": "request body larger than 1,048,576 bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65_536

    streamed = httpx.post(
        f"{url}/api/snapshots", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    small = httpx.post(f"{url}/api/judgments", json={"judgments": []})
    assert small.status_code == 401  # under the limit: on to the token check as before


def test_a_long_query_string_is_414_and_validation_errors_stay_short(live_server: tuple[str, Path]) -> None:
    url, _ = live_server
    many = "&".join(f"p{i}=x" for i in range(5000))
    assert httpx.get(f"{url}/api/search?q=elf&{many}").status_code == 414
    few = "&".join(f"unknown{i}=x" for i in range(500))  # under the limit: refused field by field
    refused = httpx.get(f"{url}/api/search?q=elf&{few}")
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "(and 497 more)" in detail and "\n" not in detail and len(detail) <= 300


def test_api_docs_carry_a_policy_that_lets_swagger_ui_run(live_server: tuple[str, Path]) -> None:
    url, _ = live_server
    page = httpx.get(f"{url}/api/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert policy != httpx.get(f"{url}/").headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    inline = script_hashes(page.text)
    assert inline and all(source in directives["script-src"] for source in inline)  # by hash only
    assert "'unsafe-inline'" not in directives["script-src"]
    for src in re.findall(r'<script src="([^"]+)"', page.text):
        assert src.startswith(CDN) and CDN in directives["script-src"]
    assert httpx.get(f"{url}/api/openapi.json").json()["info"]["title"] == "freshrank"


def test_errors_show_no_server_path(live_server: tuple[str, Path], workbench_settings: Settings) -> None:
    url, _ = live_server
    answer = httpx.get(f"{url}/api/compare", params={"mode": "models", "candidate": "made-up-version"})
    assert 400 <= answer.status_code < 500
    detail = answer.json()["detail"]
    assert "made-up-version" in detail
    assert str(workbench_settings.state_dir) not in detail and "/state" not in detail
    assert public_message("no card in /srv/app/state/models/v1 (known: a)") == "no card in …/v1 (known: a)"
    assert public_message("at http://127.0.0.1:8080/v2/models") == "at http://127.0.0.1:8080/v2/models"
