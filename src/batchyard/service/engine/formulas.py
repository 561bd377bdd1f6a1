"""Autoscale formulas as the engine checks them: parsed once, refused with the 400 that names the problem."""

from __future__ import annotations

from typing import Any

from batchyard.service import autoscale
from batchyard.service.errors import BatchError

_KEPT = 256  # parsed formulas remembered; pools share few formulas, so the cache is simply cleared when full


class Formulas:
    def __init__(self) -> None:
        self._programs: dict[str, Any] = {}  # formula -> parsed program

    def check(self, formula: str) -> Any:
        """The parsed formula, or a 400 naming the problem and where it is."""
        program = self._programs.get(formula)
        if program is not None:
            return program
        try:
            program = autoscale.parse(formula)
        except autoscale.FormulaError as exc:
            raise BatchError(400, exc.code, exc.headline, {"Message": exc.message}) from None
        if len(self._programs) > _KEPT:
            self._programs.clear()
        self._programs[formula] = program
        return program
