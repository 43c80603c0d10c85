"""The delivery engine: claim due outbox events, send them through the platform adapter, record outcomes."""
