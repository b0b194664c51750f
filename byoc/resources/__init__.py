"""The registry of resource kinds: one module per AWS kind, one line per kind here."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import Any

from byoc.model import Companion
from byoc.resources.base import ResourceType

#: every kind's module, by Terraform's name without the ``aws_`` prefix
MODULES = (
    # network
    "vpc", "subnet", "internet_gateway", "eip", "nat_gateway", "route_table",
    "route_table_association", "security_group", "default_security_group", "flow_log",
    # identity, keys, data, secrets
    "iam_role", "iam_instance_profile", "kms_key", "s3_bucket", "secretsmanager_secret",
    # nodes
    "ebs_volume", "instance", "volume_attachment",
    # load balancer
    "lb", "lb_target_group", "lb_listener", "lb_target_group_attachment",
    # PrivateLink in front of a network load balancer
    "vpc_endpoint_service", "vpc_endpoint_service_allowed_principal",
    # monitoring
    "cloudwatch_log_group", "sns_topic", "sns_topic_subscription", "cloudwatch_metric_alarm",
    "cloudwatch_dashboard",
    # the admin password's scheduled rotation
    "sqs_queue", "lambda_function", "lambda_permission", "secretsmanager_secret_rotation",
)

REGISTRY: dict[str, ResourceType] = {}
#: held while the registry is filled: a thread must never see it half-filled (engines in threads)
_FILLING = threading.Lock()
_FILLED = threading.Event()


def register(kind: ResourceType) -> None:
    REGISTRY[kind.kind] = kind


def registry() -> dict[str, ResourceType]:
    """All registered kinds by name (loaded on first use, so `byoc --help` stays fast)."""
    if not _FILLED.is_set():
        with _FILLING:
            if not _FILLED.is_set():
                for name in MODULES:
                    kind = importlib.import_module(f"byoc.resources.{name}").KIND
                    REGISTRY.setdefault(kind.kind, kind)
                _FILLED.set()
    return REGISTRY


class ProviderShapes:
    """The plan JSON's shaper (``byoc.planjson.Shaper``) over the registered kinds: each kind's
    ``provider_values`` and ``provider_companions``; a kind byoc does not know passes through."""

    def __init__(self, kinds: Mapping[str, ResourceType]) -> None:
        self.kinds = kinds

    def values(self, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
        k = self.kinds.get(kind)
        return k.provider_values(values) if k is not None else dict(values)

    def companions(self, kind: str, values: Mapping[str, Any], aws_id: str | None) -> list[Companion]:
        k = self.kinds.get(kind)
        return k.provider_companions(values, aws_id) if k is not None else []


def shaper() -> ProviderShapes:
    """The shaper the CLI and the API pass to ``Plan.to_dict`` / ``render_plan_json``."""
    return ProviderShapes(registry())
