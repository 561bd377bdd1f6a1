"""The engine's event reactions: collected from marked methods, run in a fixed, visible order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from batchyard.service.engine.events import Reactions, handles_message, reacts_to


@dataclass(frozen=True)
class Happened:
    what: str


class Base:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.reactions = Reactions(self)

    @reacts_to(Happened)
    def _base_reacts(self, event: Happened) -> None:
        self.seen.append(f"base:{event.what}")

    @handles_message("ping")
    def _ping(self, node: Any, message: dict[str, Any]) -> None:
        self.seen.append("ping")


class Concern(Base):
    @reacts_to(Happened)
    def _concern_reacts(self, event: Happened) -> None:
        self.seen.append(f"concern:{event.what}")

    @reacts_to(Happened, order=-1)
    def _concern_first(self, event: Happened) -> None:
        self.seen.append(f"first:{event.what}")


def test_reactions_run_by_order_then_base_concerns_first() -> None:
    owner = Concern()
    owner.reactions.emit(Happened("x"))
    assert owner.seen == ["first:x", "base:x", "concern:x"]
    assert owner.reactions.describe() == {
        "Happened": ["Concern._concern_first", "Base._base_reacts", "Concern._concern_reacts"]
    }


def test_message_handlers_are_found_by_kind() -> None:
    owner = Concern()
    handler = owner.reactions.message_handler("ping")
    assert handler is not None
    handler(None, {"t": "ping"})
    assert owner.seen == ["ping"]
    assert owner.reactions.message_handler("unknown") is None


def test_two_handlers_of_one_message_kind_are_refused() -> None:
    class Twice(Base):
        @handles_message("ping")
        def _another_ping(self, node: Any, message: dict[str, Any]) -> None:
            pass

    with pytest.raises(TypeError, match="two handlers"):
        Twice()
