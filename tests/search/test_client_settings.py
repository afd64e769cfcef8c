"""How the OpenSearch and Elasticsearch clients talk to their node: gzip only across a network, and a
keep-alive pool as large as the API's search threads."""

from __future__ import annotations

import pytest

from freshrank.search import lucene


@pytest.mark.parametrize(
    ("base_url", "gzip"),
    [
        ("http://127.0.0.1:9200", False),
        ("http://elastic:secret@localhost:9201", False),
        ("http://[::1]:9200", False),
        ("https://search.example.com:9200", True),
        ("http://10.0.0.7:9200", True),
    ],
)
def test_bodies_are_gzipped_only_across_a_network(base_url: str, gzip: bool) -> None:
    assert lucene.compress(base_url) is gzip


def test_the_pool_holds_a_connection_per_search_thread() -> None:
    import anyio.to_thread

    async def threads() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(threads) <= lucene.CONNECTIONS
