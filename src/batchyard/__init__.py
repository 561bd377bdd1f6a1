"""batchyard: a self-hostable Azure Batch service."""
