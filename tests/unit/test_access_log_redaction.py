"""The access log's query redaction: credentials out, everything else as sent."""

from __future__ import annotations

from batchyard.service.access_log import redact_query


def test_credential_values_are_redacted_and_the_rest_kept() -> None:
    assert redact_query("sig=abc%2Bdef&sv=2022-11-02") == "sig=REDACTED&sv=2022-11-02"
    assert redact_query("api-version=2025-06-01&SIG=x&Token=y&key=z") == (
        "api-version=2025-06-01&SIG=REDACTED&Token=REDACTED&key=REDACTED"
    )
    assert redact_query("sig=&timeout=30") == "sig=REDACTED&timeout=30"
    listing = "$skiptoken=abc&$filter=id%20eq%20%27sig=1%27"
    assert redact_query(listing) == listing
    assert redact_query("maxresults=10") == "maxresults=10"
