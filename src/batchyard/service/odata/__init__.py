"""OData `$filter` for the Azure Batch list operations: parsing, checking and in-memory evaluation.

    f = parse_filter("(state eq 'running') and startswith(id, 'renderTask')", "tasks")
    matches = to_predicate(f, "tasks")          # over wire-shaped dicts (pools, jobs, nodes, ...)

`parse_filter` raises only `BatchError` (400 InvalidQueryParameterValue, naming `$filter`) for bad input.
The filterable properties and operators per list kind are in `properties.LISTS`. Nothing here knows SQL:
the store compiles a `Filter` for its own database (persistence/sql_filters.py).
"""

from batchyard.service.odata.predicate import Predicate, to_predicate
from batchyard.service.odata.properties import LISTS, ListSpec, PropertySpec
from batchyard.service.odata.validate import Filter, parse_filter

__all__ = [
    "LISTS",
    "Filter",
    "ListSpec",
    "Predicate",
    "PropertySpec",
    "parse_filter",
    "to_predicate",
]
