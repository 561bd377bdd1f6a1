"""The linked ("auto-storage") account: Azure Blob Storage through `azure-storage-blob`, SAS issuing for
nodes (which never see the key), application packages, and a local Azurite when asked for."""
