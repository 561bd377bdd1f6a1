"""The engine's event reactions: collected from marked methods, run in a fixed, visible order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from batchyard.service.engine.events import Reactions, handles_message, reacts_to


@dataclass(frozen=True)
class Happened:
    what: str


class First:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @reacts_to(Happened)
    def _first_reacts(self, event: Happened) -> None:
        self.seen.append(f"first:{event.what}")

    @handles_message("ping")
    def _ping(self, node: Any, message: dict[str, Any]) -> None:
        self.seen.append("ping")


class Second:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @reacts_to(Happened)
    def _second_reacts(self, event: Happened) -> None:
        self.seen.append(f"second:{event.what}")

    @reacts_to(Happened, order=-1)
    def _second_before_all(self, event: Happened) -> None:
        self.seen.append(f"early:{event.what}")


def _reactions(*concerns: object) -> Reactions:
    reactions = Reactions()
    for concern in concerns:
        reactions.add(concern)
    return reactions


def test_reactions_run_by_order_then_in_the_order_concerns_were_added() -> None:
    seen: list[str] = []
    reactions = _reactions(First(seen), Second(seen))
    reactions.emit(Happened("x"))
    assert seen == ["early:x", "first:x", "second:x"]
    assert reactions.describe() == {
        "Happened": ["Second._second_before_all", "First._first_reacts", "Second._second_reacts"]
    }


def test_message_handlers_are_found_by_kind() -> None:
    seen: list[str] = []
    reactions = _reactions(First(seen), Second(seen))
    handler = reactions.message_handler("ping")
    assert handler is not None
    handler(None, {"t": "ping"})
    assert seen == ["ping"]
    assert reactions.message_handler("unknown") is None


def test_two_handlers_of_one_message_kind_are_refused() -> None:
    class AlsoPing:
        @handles_message("ping")
        def _another_ping(self, node: Any, message: dict[str, Any]) -> None:
            pass

    with pytest.raises(TypeError, match="two handlers"):
        _reactions(First([]), AlsoPing())
