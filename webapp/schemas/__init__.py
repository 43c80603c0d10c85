"""Pydantic models of what the API accepts, and the one error shape every API answer uses."""
