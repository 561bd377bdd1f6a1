"""The password the preparers give pool user accounts."""

BATCH_TEST_PASSWORD = "kt#_gahr!@aGERDXA"
