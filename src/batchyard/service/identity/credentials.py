"""What a new principal's owner needs, as one JSON object (`batchyard principals create`, the admin API)."""

from __future__ import annotations

from typing import Any

from batchyard.service.identity.directory import Directory, Principal
from batchyard.service.identity.tokens import BATCH_RESOURCE
from batchyard.service.tls import CA_FILE, TLS_DIR


def credentials(directory: Directory, principal: Principal, secret: str, authority: str) -> dict[str, Any]:
    """Tenant, client id and secret, the authority host for azure-identity, the CA that HTTPS clients trust."""
    ca = directory.path.parent / TLS_DIR / CA_FILE
    return {
        "tenantId": directory.tenant_id,
        **principal.public(),
        "clientSecret": secret,
        "authority": authority,
        "caCertificate": str(ca) if ca.exists() else None,
        "scope": f"{BATCH_RESOURCE}/.default",
    }
