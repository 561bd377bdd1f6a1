"""Request-body parsing and validation into normalized stored documents, plus static catalogs.

Every `parse_*` function takes the decoded JSON body and returns a new dict in the contract's wire shape
(camelCase) with the service defaults filled in, or raises `batchyard.service.errors.BatchError`
(MissingRequiredProperty / InvalidPropertyValue naming the property by dotted path, or
InvalidRequestBody when the body is not a JSON object).
"""

from __future__ import annotations

from .catalog import (
    VM_SIZES,
    VmSize,
    canonical_vm_size,
    image_commands,
    is_supported_agent_sku,
    lookup_vm_size,
    max_task_slots,
    node_agent_skus,
    supported_images,
)
from .contract_rules import check_id
from .durations import UNLIMITED, canonical_duration, duration_seconds, format_duration, parse_duration
from .jobs import (
    parse_job_create,
    parse_job_disable,
    parse_job_replace,
    parse_job_schedule_create,
    parse_job_schedule_replace,
    parse_job_schedule_update,
    parse_job_terminate,
    parse_job_update,
)
from .nodes import (
    parse_node_deallocate,
    parse_node_disable_scheduling,
    parse_node_reboot,
    parse_node_reimage,
    parse_node_user_create,
    parse_node_user_replace,
    parse_upload_batch_service_logs,
)
from .pools import (
    parse_pool_create,
    parse_pool_enable_autoscale,
    parse_pool_evaluate_autoscale,
    parse_pool_remove_nodes,
    parse_pool_replace,
    parse_pool_resize,
    parse_pool_update,
)
from .schema import contract, validate
from .tasks import parse_task_collection, parse_task_create, parse_task_update

__all__ = [
    "UNLIMITED",
    "VM_SIZES",
    "VmSize",
    "canonical_duration",
    "canonical_vm_size",
    "check_id",
    "contract",
    "duration_seconds",
    "format_duration",
    "image_commands",
    "is_supported_agent_sku",
    "lookup_vm_size",
    "max_task_slots",
    "node_agent_skus",
    "parse_duration",
    "parse_job_create",
    "parse_job_disable",
    "parse_job_replace",
    "parse_job_schedule_create",
    "parse_job_schedule_replace",
    "parse_job_schedule_update",
    "parse_job_terminate",
    "parse_job_update",
    "parse_node_deallocate",
    "parse_node_disable_scheduling",
    "parse_node_reboot",
    "parse_node_reimage",
    "parse_node_user_create",
    "parse_node_user_replace",
    "parse_pool_create",
    "parse_pool_enable_autoscale",
    "parse_pool_evaluate_autoscale",
    "parse_pool_remove_nodes",
    "parse_pool_replace",
    "parse_pool_resize",
    "parse_pool_update",
    "parse_task_collection",
    "parse_task_create",
    "parse_task_update",
    "parse_upload_batch_service_logs",
    "supported_images",
    "validate",
]
