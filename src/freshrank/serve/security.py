"""Who calls: the API token for writes, and the caller of a search (client address, token or not)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from freshrank.config import Settings
from freshrank.serve.workbench import Caller


def _holds_token(settings: Settings, authorization: str | None) -> bool:
    expected = settings.serve.api_token
    scheme, _, given = (authorization or "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not given.strip():
        return False
    return secrets.compare_digest(given.strip().encode(), expected.encode())


async def _caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The client's address and whether it sent the API token (searches then may score new labels).

    ``async`` though it never waits: FastAPI runs a plain ``def`` dependency in its thread pool, one more
    hand-off per search."""
    settings: Settings = request.app.state.workbench.settings
    client = request.client.host if request.client else "unknown"
    return Caller(client, _holds_token(settings, authorization))


Who = Annotated[Caller, Depends(_caller)]


def token_guard(settings: Settings) -> Callable[[str | None], None]:
    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = settings.serve.api_token
        if not expected:
            raise HTTPException(
                403, "write actions are disabled: no API token is configured (set FRESHRANK_SERVE__API_TOKEN)"
            )
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise HTTPException(
                401,
                "this action needs the API token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not secrets.compare_digest(given.strip().encode(), expected.encode()):
            raise HTTPException(401, "wrong API token", headers={"WWW-Authenticate": "Bearer"})

    return require_token


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc and loc[0] in ("query", "body", "path", "header"):  # where it came from, not which field
            loc = loc[1:]
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where[:60] or 'request'}: {error['msg']}")
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    text = " ".join(("; ".join(parts[:3]) + more).split())  # one line, bounded
    return text if len(text) <= 300 else text[:299] + "…"


_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/]+/)+([^\s'\",;)]*)")


def public_message(text: str) -> str:
    """An error message for clients: absolute server paths cut to their last part (``…/name``)."""
    return _SERVER_PATH.sub(lambda m: f"…/{m.group(1)}", text)
