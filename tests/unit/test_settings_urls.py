"""The URLs the service announces (to nodes, in `url` fields, as the token issuer) are ones a client can
reach: a wildcard listening address becomes the loopback's, a public URL wins."""

from __future__ import annotations

import pytest

from batchyard.service.config import Settings


@pytest.mark.parametrize(
    ("host", "http", "https"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000", "https://127.0.0.1:8001"),
        ("0.0.0.0", "http://127.0.0.1:8000", "https://127.0.0.1:8001"),
        ("::", "http://[::1]:8000", "https://[::1]:8001"),
        ("::1", "http://[::1]:8000", "https://[::1]:8001"),
        ("batch.example", "http://batch.example:8000", "https://batch.example:8001"),
    ],
)
def test_announced_urls_are_reachable(host: str, http: str, https: str) -> None:
    settings = Settings(host=host, port=8000, https_port=8001)
    assert settings.base_url == http
    assert settings.https_url == https


def test_public_url_names_both() -> None:
    settings = Settings(host="0.0.0.0", port=8000, https_port=8001, public_url="http://batch.example:8000/")
    assert settings.base_url == "http://batch.example:8000"
    assert settings.https_url == "https://batch.example:8001"


def test_no_https_port_no_https_url() -> None:
    assert Settings(host="0.0.0.0", port=8000).https_url is None
