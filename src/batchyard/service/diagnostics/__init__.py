"""Azure Batch diagnostic logs (Service Logs): records of pool and task events, kept in the store's
outbox with the changes that raised them, shipped to a storage account's `insights-logs-servicelogs`
container in Azure Monitor's layout, and streamed live (README, Diagnostic logs)."""
