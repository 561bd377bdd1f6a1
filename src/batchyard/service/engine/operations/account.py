"""Account-wide operations: certificates, usage statistics of jobs, pools and schedules, pool usage metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batchyard.service.clock import iso
from batchyard.service.engine.account_keys import id_in
from batchyard.service.engine.operations.base import OperationsBase
from batchyard.service.engine.records import JobRecord, PoolRecord
from batchyard.service.engine.schedules import ScheduleRecord
from batchyard.service.engine.statistics import job_statistics, pool_statistics
from batchyard.service.engine.usage import INTERVAL, job_usage_key, pool_usage_key


class AccountOperations(OperationsBase):
    # --- certificates ---------------------------------------------------------------------------

    def certificates(self) -> list[dict[str, Any]]:
        return [doc for key, doc in self.engine.certificate_ops.certificates.items() if self.owns(key)]

    def certificate(self, algorithm: str, thumbprint: str) -> dict[str, Any]:
        """The certificate, or CertificateNotFound."""
        return self.engine.certificate_ops.get_certificate(self.account, algorithm, thumbprint)

    def add_certificate(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self.store.transaction():
            return self.engine.certificate_ops.add_certificate(spec, self.account)

    def delete_certificate(self, algorithm: str, thumbprint: str) -> None:
        doc = self.engine.certificate_ops.get_certificate(self.account, algorithm, thumbprint)
        with self.store.transaction():
            self.engine.certificate_ops.delete_certificate(doc)

    def cancel_certificate_deletion(self, algorithm: str, thumbprint: str) -> dict[str, Any]:
        doc = self.engine.certificate_ops.get_certificate(self.account, algorithm, thumbprint)
        with self.store.transaction():
            self.engine.certificate_ops.cancel_certificate_deletion(doc)
        return doc

    # --- statistics (`$expand=stats`) -------------------------------------------------------------

    def job_stats(self, job: JobRecord, url: str) -> dict[str, Any]:
        engine = self.engine
        totals = engine.usage_ops.usage.get(("job", job_usage_key(job)), {})
        return job_statistics(totals, url, job.doc["creationTime"], job.succeeded, job.failed, engine.core.now())

    def pool_stats(self, pool: PoolRecord, url: str) -> dict[str, Any]:
        totals = self.engine.usage_ops.usage.get(("pool", pool_usage_key(pool)), {})
        return pool_statistics(totals, url, pool.doc["creationTime"], self.engine.core.now())

    def schedule_stats(self, schedule: ScheduleRecord, url: str) -> dict[str, Any]:
        engine = self.engine
        totals = engine.usage_ops.usage.get(("schedule", f"{schedule.key}#{schedule.seq}"), {})
        jobs = engine.schedule_ops.jobs_of_schedule(schedule)
        succeeded, failed = sum(job.succeeded for job in jobs), sum(job.failed for job in jobs)
        return job_statistics(totals, url, schedule.doc["creationTime"], succeeded, failed, engine.core.now())

    # --- pool usage metrics -----------------------------------------------------------------------

    def pool_usage_metrics(self, start: float | None, end: float | None) -> list[dict[str, Any]]:
        """Per pool, per 30-minute interval: vmSize and core hours. Only finished intervals are reported.

        Without start/end only the last finished interval; with them, the intervals that start at or
        after `start` (rounded down to an interval) and end by `end` (Unix times).
        """
        now = self.engine.core.now().timestamp()
        last_start = (now // INTERVAL) * INTERVAL - INTERVAL  # the last interval that has ended
        first = last_start if start is None else (start // INTERVAL) * INTERVAL
        final = last_start if end is None else min(last_start, end - INTERVAL)
        return [
            {
                "poolId": pool_id,
                "startTime": iso(datetime.fromtimestamp(begin, UTC)),
                "endTime": iso(datetime.fromtimestamp(begin + INTERVAL, UTC)),
                "vmSize": vm_size,
                "totalCoreHours": core_seconds / 3600.0,
            }
            for begin, scoped, vm_size, core_seconds in self.store.pool_usage(first, final)
            if (pool_id := id_in(self.account, scoped)) is not None
        ]
