"""The keyword argument under which a test receives its resource group."""

RESOURCE_GROUP_PARAM = "resource_group"
