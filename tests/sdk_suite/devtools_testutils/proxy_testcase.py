"""The test-proxy side of the Azure SDK's test tools. Live only: no proxy runs and nothing is recorded,
so these are reached only by code paths for recording or playback, which fail loudly."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .helpers import trim_kwargs_from_test_function


def _not_live(*args: object, **kwargs: object) -> Any:
    raise RuntimeError("recording and playback are not supported: the suite runs live against batchyard")


get_test_id = start_record_or_playback = transform_request = stop_record_or_playback = _not_live


def recorded_by_proxy(test_func: Callable[..., Any]) -> Callable[..., Any]:
    """Live and not recording: call the test as it is."""
    if inspect.iscoroutinefunction(test_func):

        @functools.wraps(test_func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            trim_kwargs_from_test_function(test_func, kwargs)
            return await test_func(*args, **kwargs)

        return run_async

    @functools.wraps(test_func)
    def run(*args: Any, **kwargs: Any) -> Any:
        trim_kwargs_from_test_function(test_func, kwargs)
        return test_func(*args, **kwargs)

    return run


@pytest.fixture(scope="session")
def test_proxy() -> Iterator[None]:
    """The Azure SDK starts its recording proxy here; live against batchyard there is none."""
    yield None
