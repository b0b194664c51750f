"""The registry of resource kinds: one module per AWS kind, one line per kind here."""

from __future__ import annotations

from byoc.resources.base import ResourceType

REGISTRY: dict[str, ResourceType] = {}


def register(kind: ResourceType) -> None:
    REGISTRY[kind.kind] = kind


def _load() -> None:
    from byoc.resources import (
        eip,
        internet_gateway,
        nat_gateway,
        route_table,
        route_table_association,
        security_group,
        subnet,
        vpc,
    )

    for module in (vpc, subnet, internet_gateway, eip, nat_gateway, route_table,
                   route_table_association, security_group):
        register(module.KIND)


def registry() -> dict[str, ResourceType]:
    """All registered kinds by name (loaded on first use, so `byoc --help` stays fast)."""
    if not REGISTRY:
        _load()
    return REGISTRY
