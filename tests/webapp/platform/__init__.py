"""Platform: the demo store and the shared helpers."""
