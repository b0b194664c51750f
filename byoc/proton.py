"""Facts about Timeplus Proton that the blueprint and the node depend on (proton-facts.md)."""

from __future__ import annotations

#: Batch-mode ("snapshot") HTTP: JDBC/ODBC, ad-hoc queries. GET / answers "Ok." without auth.
HTTP_BATCH = 8123
#: Streaming HTTP: the ingest REST API and streaming queries (long-lived responses).
HTTP_STREAMING = 3218
#: Native TCP protocol, streaming mode (proton-client, drivers). Needs a network load balancer.
TCP_STREAMING = 8463
#: Native TCP protocol, batch mode.
TCP_BATCH = 7587
#: Prometheus metrics endpoint (/metrics).
METRICS = 9363

#: Data directory inside the container, owned by uid/gid 101.
DATA_DIR = "/var/lib/proton"
UID = 101


def listener_ports(lb_type: str) -> list[int]:
    """The ports a load balancer of this type exposes: HTTP on ALB, plus native TCP on NLB."""
    if lb_type == "network":
        return [HTTP_BATCH, HTTP_STREAMING, TCP_STREAMING]
    return [HTTP_BATCH, HTTP_STREAMING]
