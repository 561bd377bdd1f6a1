"""Implementations of the `Store` port (service/ports.py); the only code that knows a database's SQL."""
