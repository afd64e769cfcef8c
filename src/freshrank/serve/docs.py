"""``/api/docs`` (Swagger UI) with a Content-Security-Policy of its own.

The workbench's policy allows scripts and styles from this server only; Swagger UI's page loads its bundle
from jsDelivr and starts it with an inline script. This page's policy names exactly that: the CDN for the
bundle and its stylesheet, and the inline script by its SHA-256 hash (no ``'unsafe-inline'`` for scripts).
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"


def script_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-…'``) for the inline scripts of ``html``."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts]


def docs_router(docs_url: str, openapi_url: str, title: str) -> APIRouter:
    """A router serving Swagger UI at ``docs_url`` for the schema at ``openapi_url``."""
    html = bytes(
        get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - API docs", swagger_favicon_url="/static/favicon.svg"
        ).body
    ).decode()
    policy = (
        f"default-src 'none'; script-src {CDN} {' '.join(script_hashes(html))}; "
        f"style-src {CDN} 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    )
    router = APIRouter()

    @router.get(docs_url, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    return router
