"""The autoscale formula language of Azure Batch: parse a formula, evaluate it against a pool.

program = parse(formula)             # FormulaSyntaxError for syntax errors and limits
result = evaluate(program, Context(now=..., histories=..., current=...))
result.results, result.error, result.target_dedicated, ...
"""

from batchyard.service.autoscale.errors import EvaluationError, FormulaError, FormulaSyntaxError
from batchyard.service.autoscale.evaluator import Context, Evaluation, evaluate
from batchyard.service.autoscale.parser import parse
from batchyard.service.autoscale.samples import MetricHistory

__all__ = [
    "Context",
    "Evaluation",
    "EvaluationError",
    "FormulaError",
    "FormulaSyntaxError",
    "MetricHistory",
    "evaluate",
    "parse",
]
