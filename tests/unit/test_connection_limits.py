"""The connection limit and accept batch the service takes from its open-file limit."""

from __future__ import annotations

from batchyard.service.connections import connection_limits


def test_a_quarter_of_the_descriptors_stays_free_and_batches_are_an_eighth_of_that() -> None:
    assert connection_limits(2048, 1 << 20) == (2048, 2048)
    assert connection_limits(2048, 1024) == (768, 32)
    assert connection_limits(2048, 256) == (192, 8)
    assert connection_limits(100, 4096) == (100, 128)
    assert connection_limits(2048, 64) == (1, 8)
