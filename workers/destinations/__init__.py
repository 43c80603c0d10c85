"""Platform adapters behind a small registry: `get_adapter_class(kind)`."""

from workers.destinations.base import DestinationAdapter

_REGISTRY: dict[str, type[DestinationAdapter]] = {}


def register(cls: type[DestinationAdapter]) -> type[DestinationAdapter]:
    """Class decorator: make an adapter available under its `kind`."""
    _REGISTRY[cls.kind] = cls
    return cls


def adapter_classes() -> dict[str, type[DestinationAdapter]]:
    _load()
    return dict(_REGISTRY)


def get_adapter_class(kind: str) -> type[DestinationAdapter]:
    _load()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown destination kind {kind!r}") from None


def _load() -> None:
    # Importing the modules runs their @register decorators.
    from workers.destinations import esputnik, klaviyo, sendlane, webhook  # noqa: F401
