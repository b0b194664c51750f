"""PrivateLink (``network.private_link``): an endpoint service in front of the network load
balancer, so that consumers in the allowed accounts reach the cluster through interface endpoints
in their own VPCs; its allowlist is one resource per principal, managed like any other."""

from __future__ import annotations

from byoc.blueprint.base import Balancer, Builder
from byoc.model import Ref, Sorted
from byoc.spec import Spec

SERVICE = "main"


def service_names(spec: Spec) -> dict[str, frozenset[str]]:
    """The endpoint service ``build_private_link`` adds for ``spec``, by name (none without
    PrivateLink: a plan then need not look for one, see ``VpcEndpointService.discover``)."""
    return {SERVICE: frozenset()} if spec.data["network"].get("private_link") else {}


def build_private_link(b: Builder, balancer: Balancer) -> str | None:
    """The endpoint service and its allowlist; None when the spec asks for none. The spec's
    checks make sure the load balancer is a network one."""
    conf = b.spec.data["network"].get("private_link")
    if not conf or balancer.type != "network":
        return None
    service = b.add("aws_vpc_endpoint_service", SERVICE, None, {
        "network_load_balancer_arns": Sorted((Ref(balancer.lb, "arn"),)),
        "acceptance_required": conf["acceptance_required"],
    }, label=f"{b.cluster}-privatelink")
    for principal in sorted(conf["allowed_principals"]):
        b.add("aws_vpc_endpoint_service_allowed_principal", SERVICE, principal, {
            "vpc_endpoint_service_id": Ref(service),
            "principal_arn": principal,
        }, tagged=False)
    return service
