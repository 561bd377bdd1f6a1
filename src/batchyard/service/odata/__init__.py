"""OData `$filter` for the Azure Batch list operations.

    f = parse_filter("(state eq 'running') and startswith(id, 'renderTask')", "tasks")
    matches = to_predicate(f, "tasks")          # over wire-shaped dicts (pools, jobs, nodes, ...)
    where, params = to_sql(f, "tasks")          # for Store.list_tasks(job_key, after, limit, where, params)

`parse_filter` raises only `BatchError` (400 InvalidQueryParameterValue, naming `$filter`) for bad input.
The filterable properties and operators per list kind are in `properties.LISTS`.
"""

from batchyard.service.odata.compile import IndexHint, Predicate, to_index_hint, to_predicate, to_sql
from batchyard.service.odata.properties import LISTS, ListSpec, PropertySpec
from batchyard.service.odata.validate import Filter, parse_filter

__all__ = [
    "LISTS",
    "Filter",
    "IndexHint",
    "ListSpec",
    "Predicate",
    "PropertySpec",
    "parse_filter",
    "to_index_hint",
    "to_predicate",
    "to_sql",
]
