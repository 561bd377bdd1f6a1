"""The management plane (Microsoft.Batch through Azure Resource Manager) for the service's one account."""
