"""The contract's per-definition rules and aliases, which the schema validator runs wherever a definition
appears (`schema.py`).

* `ALIASES[definition](body, path) -> body` (`aliases.py`): property names from older API versions
  (`targetDedicated`, `maxTasksPerNode`, `runElevated`, `blobSource`), renamed on the raw object
  before its schema checks, only where the current name is absent.
* `RULES[definition](out, path)` (`tasks_and_jobs.py`, `pools.py`): semantic rules on the normalized
  object that the JSON schema cannot express (the contract's "must"/"must not" sentences), raising
  BatchError naming the property path. They may normalize in place (vmSize lower-cased, image version
  "latest").
* `STRING_LIMITS` and `NOT_REQUIRED` adjust the schema itself.

Rules that need other resources (the job of a task, the pool's VM size, the current state, the raw
body size) are the caller's: taskSlotsPerNode <= 4 x cores, dependsOn needing usesTaskDependencies,
exit-option jobAction needing onTaskFailure=performexitoptionsjobaction, containerSettings matching the
pool's containerConfiguration, onAllTasksComplete never going terminatejob -> noaction, poolInfo changes
only on a disabled job, the 1 MB limit of an add-collection body, duplicate task IDs in a collection.
"""

from __future__ import annotations

from .aliases import ALIASES, Alias
from .checks import ID_PATTERN, ID_REASON, Rule, check_id, show
from .endpoints import ENDPOINT_RULES
from .pools import AUTOSCALE_MIN_INTERVAL, POOL_RULES, set_autoscale_min_interval
from .tasks_and_jobs import TASK_AND_JOB_RULES

#: Maximum lengths of string properties, by property name, wherever they appear.
STRING_LIMITS: dict[str, int] = {"displayName": 1024}

#: Contract-required properties that real clients omit: azure-batch 15.1.0's BatchPoolReplaceOptions has no
#: certificateReferences at all (certificates were retired in February 2024), so it cannot be required.
NOT_REQUIRED: dict[str, frozenset[str]] = {"BatchPoolReplaceOptions": frozenset({"certificateReferences"})}

#: Definition name -> its semantic rule.
RULES: dict[str, Rule] = {**TASK_AND_JOB_RULES, **POOL_RULES, **ENDPOINT_RULES}

__all__ = [
    "ALIASES",
    "AUTOSCALE_MIN_INTERVAL",
    "set_autoscale_min_interval",
    "ID_PATTERN",
    "ID_REASON",
    "NOT_REQUIRED",
    "RULES",
    "STRING_LIMITS",
    "Alias",
    "Rule",
    "check_id",
    "show",
]
