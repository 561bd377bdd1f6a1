"""Task dependencies of one job: who waits on whom, resolved by events (a parent's outcome), never by polling.

Keys are lower-cased task ids. A parent may not exist yet when its child is added; the child simply
waits until a task with that id is added and completes. Outcomes are "satisfy" or "block" (the
dependencyAction of the parent's exit conditions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# taskIdRanges are expanded; a range this long is refused rather than allocated.
MAX_RANGE = 100_000


def parent_keys(depends_on: dict[str, Any] | None) -> set[str]:
    """The lower-cased ids a task depends on (taskIds plus the expanded taskIdRanges)."""
    if not depends_on:
        return set()
    keys = {str(task_id).lower() for task_id in depends_on.get("taskIds") or []}
    for id_range in depends_on.get("taskIdRanges") or []:
        start, end = int(id_range["start"]), int(id_range["end"])
        keys.update(str(number) for number in range(start, end + 1))
    return keys


@dataclass
class DependencyGraph:
    waiting_on: dict[str, set[str]] = field(default_factory=dict)  # child -> parents not yet satisfied
    children: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # parent -> waiting children
    outcomes: dict[str, str] = field(default_factory=dict)  # completed parent -> "satisfy" | "block"
    blocked_by: dict[str, set[str]] = field(default_factory=dict)  # child -> parents that blocked it

    def would_cycle(self, child: str, parents: Iterable[str]) -> bool:
        """Whether making `child` wait on `parents` closes a loop (a parent already waits on `child`)."""
        seen: set[str] = set()
        stack = [parent for parent in parents]
        while stack:
            key = stack.pop()
            if key == child:
                return True
            if key in seen:
                continue
            seen.add(key)
            stack.extend(self.waiting_on.get(key, ()))
            stack.extend(self.blocked_by.get(key, ()))
        return False

    def add(self, child: str, parents: set[str]) -> str:
        """Register a child; returns "ready", "waiting" or "blocked" given the outcomes known so far."""
        pending = {parent for parent in parents if self.outcomes.get(parent) != "satisfy"}
        blockers = {parent for parent in pending if self.outcomes.get(parent) == "block"}
        if blockers:
            self.blocked_by[child] = blockers
            return "blocked"
        if not pending:
            return "ready"
        self.waiting_on[child] = pending
        for parent in pending:
            self.children[parent].add(child)
        return "waiting"

    def complete(self, parent: str, outcome: str) -> tuple[list[str], list[str]]:
        """Record a parent's outcome; returns (children now ready, children now blocked)."""
        self.outcomes[parent] = outcome
        ready: list[str] = []
        blocked: list[str] = []
        for child in self.children.pop(parent, set()):
            pending = self.waiting_on.get(child)
            if pending is None:
                continue
            if outcome == "block":
                del self.waiting_on[child]
                for other in pending - {parent}:
                    self.children.get(other, set()).discard(child)
                self.blocked_by[child] = {parent}
                blocked.append(child)
                continue
            pending.discard(parent)
            if not pending:
                del self.waiting_on[child]
                ready.append(child)
        return ready, blocked

    def forget(self, key: str) -> None:
        """A task was deleted: it no longer waits on anything."""
        for parent in self.waiting_on.pop(key, set()):
            self.children.get(parent, set()).discard(key)
        self.blocked_by.pop(key, None)

    def is_waiting(self, key: str) -> bool:
        return key in self.waiting_on or key in self.blocked_by
