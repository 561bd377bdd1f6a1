"""Formula errors: what a syntax check or an evaluation reports, with the position in the formula.

A `FormulaError` is the only exception the language lets out. Its `code` is a Batch error code:
syntax problems and limits are answered as request errors (400) when a formula is set, evaluation
problems end up in the pool's `autoScaleRun.error`.
"""

from __future__ import annotations

SYNTAX_ERROR = "AutoScalingFormulaSyntaxError"
TOO_LONG = "AutoScaleFormulaTooLong"
EVALUATION_ERROR = "AutoScalingFormulaEvaluationError"
INSUFFICIENT_SAMPLES = "InsufficientSampleData"

_HEADLINES = {
    SYNTAX_ERROR: "The specified auto-scaling formula has a syntax error.",
    TOO_LONG: "The specified auto-scaling formula exceeds lengths limit.",
    EVALUATION_ERROR: "Autoscale evaluation failed.",
    INSUFFICIENT_SAMPLES: "Autoscale evaluation failed due to insufficient sample data",
}


class FormulaError(Exception):
    def __init__(self, code: str, detail: str, line: int = 0, col: int = 0, statement: int = 0) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.line = line
        self.col = col
        self.statement = statement

    @property
    def headline(self) -> str:
        return _HEADLINES.get(self.code, "Autoscale evaluation failed.")

    @property
    def message(self) -> str:
        """`Line L, Col C: detail` as the Batch service words it (no position for whole-formula limits)."""
        if self.line:
            where = f"Line {self.line}, Col {self.col}: "
            if self.statement:
                where += f"statement {self.statement}: "
            return where + self.detail
        return self.detail

    def __str__(self) -> str:
        return self.message


class FormulaSyntaxError(FormulaError):
    def __init__(self, detail: str, line: int = 0, col: int = 0, code: str = SYNTAX_ERROR) -> None:
        super().__init__(code, detail, line, col)


class EvaluationError(FormulaError):
    def __init__(self, detail: str, pos: tuple[int, int] = (0, 0), code: str = EVALUATION_ERROR) -> None:
        super().__init__(code, detail, pos[0], pos[1])
