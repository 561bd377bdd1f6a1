"""The engine facade's operations, one module per resource; `engine/facade.py` combines them."""
