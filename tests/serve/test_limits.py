"""Limits at the edge of the servers: the API token's form, request bodies over the size limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from freshrank.config import ServeSettings


def test_the_token_is_stripped_and_a_blank_one_refused() -> None:
    assert ServeSettings(api_token="s3cret\n").api_token == "s3cret"
    assert ServeSettings(api_token="").api_token == ""  # not configured: writes disabled
    with pytest.raises(ValidationError, match="blank"):
        ServeSettings(api_token=" \n ")
