"""Semantic checks that JSON Schema cannot express: CIDR arithmetic, zones, bucket names, versions.

Each check reads only fields that passed the schema; a field with a schema error skips just the
checks that need it, so every independent problem is still reported, once. Risky but legal
choices come back as warnings.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from byoc.spec.cidr import CidrError, check_az_slot, check_newbits, parse_cidr, parse_vpc_cidr
from byoc.spec.issues import Issue, Path

_PROTON = re.compile(r"(1\.(3|4|5|6)|3\.[0-9]+)\.[0-9]+(-rc)?")
_SEMVER = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(-rc)?")
_TWO = re.compile(r"2(\.[0-9]+){0,2}(-rc)?")
_IP_LIKE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_TAG_TEXT = re.compile(r"[\w .:/=+\-@]*")
_ZONE_ID = re.compile(r"[a-z]{2,5}[0-9]-az[0-9]+")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
LOGS_SUFFIX = "-logs"
PIN_HINT = "pin an exact version such as 1.6.16 or 3.0.19"


class _Skip(Exception):
    """A field a check needs is missing or has a schema error."""


class _Ctx:
    def __init__(self, data: dict[str, Any], blocked: Iterable[Path]) -> None:
        self.data = data
        self.blocked = list(blocked)
        self.issues: list[Issue] = []

    def ok(self, path: Path) -> bool:
        """No schema problem on ``path``, above it or inside it."""
        return not any(b[: len(path)] == path or path[: len(b)] == b for b in self.blocked)

    def get(self, *path: str | int) -> Any:
        if not self.ok(path):
            raise _Skip
        value: Any = self.data
        for part in path:
            found = (isinstance(value, dict) and part in value) or (
                isinstance(value, list) and isinstance(part, int) and part < len(value)
            )
            if not found:
                raise _Skip
            value = value[part]
        return value

    def items(self, *path: str) -> Iterator[tuple[str | int, Any]]:
        """The entries of a mapping or list whose own values have no schema problem."""
        if any(path[: len(b)] == b for b in self.blocked):
            return
        container: Any = self.data
        for part in path:
            if not isinstance(container, dict) or part not in container:
                return
            container = container[part]
        if isinstance(container, dict):
            pairs: Iterable[tuple[str | int, Any]] = container.items()
        elif isinstance(container, list):
            pairs = enumerate(container)
        else:
            return
        for key, value in pairs:
            if self.ok((*path, key)):
                yield key, value

    def error(self, path: Path, message: str, at: Path | None = None) -> None:
        self.issues.append(Issue(path, message, at=at))

    def warn(self, path: Path, message: str) -> None:
        self.issues.append(Issue(path, message, warning=True))


def run_checks(data: dict[str, Any], blocked: Iterable[Path]) -> list[Issue]:
    """Errors and warnings beyond the schema. Normalises ``cluster.proton_version`` and fills in
    ``storage.access_logs.bucket_name`` in place."""
    ctx = _Ctx(data, blocked)
    for check in _CHECKS:
        with contextlib.suppress(_Skip):
            check(ctx)
    return ctx.issues


def _vpc(ctx: _Ctx) -> ipaddress.IPv4Network:
    try:
        return parse_vpc_cidr(ctx.get("network", "vpc_cidr"))
    except CidrError:
        raise _Skip from None


def check_vpc_cidr(ctx: _Ctx) -> None:
    text = ctx.get("network", "vpc_cidr")
    try:
        parse_vpc_cidr(text)
    except CidrError as exc:
        ctx.error(("network", "vpc_cidr"), str(exc))


def _zones(ctx: _Ctx) -> Iterator[tuple[int, str]]:
    """The zones that belong to the region (the others get their own error)."""
    region = ctx.get("aws", "region")
    for index, zone in ctx.items("aws", "availability_zones"):
        if isinstance(index, int) and re.fullmatch(re.escape(region) + "[a-z]", zone):
            yield index, zone


def check_zones(ctx: _Ctx) -> None:
    region = ctx.get("aws", "region")
    for index, zone in ctx.items("aws", "availability_zones"):
        if re.fullmatch(re.escape(region) + "[a-z]", zone):
            continue
        text = f"{zone!r} is not an availability zone of {region}"
        if _ZONE_ID.fullmatch(zone):
            text += f"; use the zone's name (such as {region}a), not its zone id"
        else:
            text += f"; expected {region} followed by one letter, such as {region}a"
        ctx.error(("aws", "availability_zones", index), text)


def check_subnets(ctx: _Ctx) -> None:
    vpc = _vpc(ctx)
    newbits = ctx.get("network", "subnet_newbits")
    try:
        check_newbits(vpc, newbits)
    except CidrError as exc:
        ctx.error(("network", "subnet_newbits"), str(exc))
        return
    for index, zone in _zones(ctx):
        try:
            check_az_slot(vpc, newbits, zone)
        except CidrError as exc:
            ctx.error(("aws", "availability_zones", index), str(exc))


def check_alb_zones(ctx: _Ctx) -> None:
    if ctx.get("load_balancer", "type") != "application":
        return
    zones = ctx.get("aws", "availability_zones")
    if len(zones) < 2:
        ctx.error(
            ("aws", "availability_zones"),
            "an application load balancer needs subnets in at least 2 availability zones; "
            "list a second zone or set load_balancer.type: network",
        )


def check_allowed_cidrs(ctx: _Ctx) -> None:
    public = ctx.get("network", "public_access")
    for index, text in ctx.items("network", "allowed_cidrs"):
        path = ("network", "allowed_cidrs", index)
        try:
            network = parse_cidr(text)
        except CidrError as exc:
            ctx.error(path, str(exc))
            continue
        if network.prefixlen == 0 and not public:
            ctx.error(
                path,
                f"{text} is the whole internet but network.public_access is false; "
                "turn on network.public_access or narrow the CIDR",
            )
        elif public and network.prefixlen < 8:
            what = "the whole internet" if network.prefixlen == 0 else "a very wide range"
            ctx.warn(
                path,
                f"{text} is {what}, and network.public_access is on: "
                "the cluster is reachable from all of it",
            )


def check_ssh_exposure(ctx: _Ctx) -> None:
    """SSH open to the whole internet, to a very wide range, or to a wide range of public addresses."""
    if ctx.get("compute", "ssh_key_name") is None:
        return
    for _, text in ctx.items("network", "allowed_cidrs"):
        try:
            network = parse_cidr(text)
        except CidrError:
            continue
        if network.prefixlen < 8 or (not network.is_private and network.prefixlen < 16):
            what = "" if network.prefixlen == 0 else ", a wide range"
            ctx.warn(
                ("compute", "ssh_key_name"),
                f"SSH to the nodes is open to {text}{what} (network.allowed_cidrs); "
                "narrow the CIDRs or drop the key and use SSM Session Manager",
            )
            return


def check_public_tls(ctx: _Ctx) -> None:
    """A public endpoint without TLS: the admin password would cross the internet in clear text."""
    if ctx.get("network", "public_access") and not ctx.get("load_balancer", "certificate_arn"):
        ctx.warn(
            ("load_balancer", "certificate_arn"),
            "network.public_access is on but the load balancer has no TLS certificate: queries and "
            "passwords cross the internet in clear text; set load_balancer.certificate_arn",
        )


def check_private_link(ctx: _Ctx) -> None:
    """PrivateLink fronts a network load balancer only; its principals live in the region's
    partition; consumers get through the load balancer's security group only from allowed_cidrs."""
    if not ctx.get("network", "private_link"):
        return
    path = ("network", "private_link")
    lb_type = ctx.get("load_balancer", "type")
    if lb_type != "network":
        ctx.error(path, f"PrivateLink needs a network load balancer, but load_balancer.type is {lb_type}; "
                        "set load_balancer.type: network or remove network.private_link")
    region = ctx.get("aws", "region")
    want = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    for index, arn in ctx.items("network", "private_link", "allowed_principals"):
        if str(arn).split(":")[1:2] != [want]:
            ctx.error((*path, "allowed_principals", index),
                      f"{arn} is not in the {want} partition of {region}; AWS allows only principals "
                      f"of the same partition (arn:{want}:iam::…)")
    if ctx.get("network", "public_access"):
        ctx.warn(path, "network.public_access is on: the load balancer is reachable from allowed_cidrs "
                       "over the internet as well as through PrivateLink; turn public_access off to "
                       "offer PrivateLink only")
    if not ctx.get("network", "allowed_cidrs"):
        ctx.warn(("network", "allowed_cidrs"),
                 "network.allowed_cidrs is empty: the load balancer's security group also filters "
                 "PrivateLink traffic (by the consumers' client addresses), so no consumer can "
                 "connect; add the consumers' client CIDRs")


def check_bucket(ctx: _Ctx) -> None:
    _bucket_name(ctx, ("storage", "bucket_name"), ctx.get("storage", "bucket_name"))


def log_bucket_name(bucket_name: str) -> str:
    """The log bucket's default name: the data bucket's with ``-logs``, the data bucket's name
    shortened (without a trailing dot or hyphen) where that would pass S3's 63 characters."""
    return f"{bucket_name[: 63 - len(LOGS_SUFFIX)].rstrip('.-')}{LOGS_SUFFIX}"


def check_log_bucket(ctx: _Ctx) -> None:
    """Fills in ``storage.access_logs.bucket_name`` when null, and checks it like the data bucket's."""
    path = ("storage", "access_logs", "bucket_name")
    data_bucket = ctx.get("storage", "bucket_name")
    logs = ctx.get("storage", "access_logs")
    name = ctx.get(*path)
    if name is None:  # derived from a name checked above: nothing new to report
        logs["bucket_name"] = log_bucket_name(data_bucket)
        return
    if name == data_bucket:
        ctx.error(path, f"{name!r} is the data bucket's name (storage.bucket_name): the log bucket is a "
                        "second bucket (a bucket must not log into itself); choose another name or null")
        return
    _bucket_name(ctx, path, name)


def _bucket_name(ctx: _Ctx, path: Path, name: str) -> None:
    if ".." in name:
        ctx.error(path, f"{name!r} is not valid: S3 bucket names cannot contain '..'")
    if _IP_LIKE.fullmatch(name):
        ctx.error(path, f"{name!r} is not valid: S3 bucket names cannot look like an IP address")
    for prefix in _BUCKET_PREFIXES:
        if name.startswith(prefix):
            ctx.error(path, f"{name!r} is not valid: S3 reserves names starting with {prefix!r}")
    for suffix in _BUCKET_SUFFIXES:
        if name.endswith(suffix):
            ctx.error(path, f"{name!r} is not valid: S3 reserves names ending with {suffix!r}")
    if "." in name and ".." not in name and not _IP_LIKE.fullmatch(name):
        ctx.warn(
            path,
            f"{name!r} contains dots: HTTPS to virtual-hosted bucket addresses fails "
            "certificate checks and Transfer Acceleration is unavailable; "
            "prefer hyphens",
        )


def check_proton_version(ctx: _Ctx) -> None:
    path = ("cluster", "proton_version")
    given: str = ctx.get(*path)
    if given == "latest":
        ctx.warn(path, f"'latest' has crossed the 1.x→3.x boundary; {PIN_HINT}")
        return
    version = given[1:] if given[:1] in ("v", "V") and given[1:2].isdigit() else given
    if _TWO.fullmatch(version):
        ctx.error(
            path,
            f"{given!r}: there is no Proton 2.x; 2.x numbers belong to Timeplus Enterprise; "
            f"{PIN_HINT}",
        )
        return
    if not _SEMVER.fullmatch(version):
        ctx.error(
            path, f"{given!r} is not a Proton version: expected X.Y.Z such as 1.6.16 or 3.0.19"
        )
        return
    if version != given:
        ctx.warn(
            path,
            f"{given!r}: the image tag is {version} without the v; "
            f"write proton_version: {version}",
        )
        ctx.data["cluster"]["proton_version"] = version
    if not _PROTON.fullmatch(version):
        ctx.warn(
            path,
            f"{version} is not a known Proton release line (1.3 to 1.6, 3.x); "
            "check that the image tag exists",
        )


def check_encryption(ctx: _Ctx) -> None:
    base = ("security", "encryption")
    enabled = ctx.get(*base, "enabled")
    key = ctx.get(*base, "kms_key_arn")
    create = ctx.get(*base, "create_kms_key")
    if not enabled:
        if key is not None:
            ctx.error(
                (*base, "kms_key_arn"),
                "a KMS key is given but security.encryption.enabled "
                "is false; turn encryption on or remove the key",
            )
        if create:
            ctx.error(
                (*base, "create_kms_key"),
                "is true but security.encryption.enabled is false; "
                "turn encryption on or set it to false",
            )
        ctx.warn(
            (*base, "enabled"),
            "encryption at rest is off: EBS volumes and the bucket's objects "
            "will not be encrypted by byoc",
        )
    elif create and key is not None:
        ctx.error(
            (*base, "create_kms_key"),
            "cannot be true together with kms_key_arn: choose "
            "a new key (create_kms_key) or an existing one "
            "(kms_key_arn)",
        )


def check_permissions_boundary(ctx: _Ctx) -> None:
    """The boundary policy is in the cluster's partition (IAM refuses another one's)."""
    from byoc.model import partition

    path = ("security", "permissions_boundary_arn")
    arn, region = ctx.get(*path), ctx.get("aws", "region")
    if not isinstance(arn, str) or not isinstance(region, str):
        return
    want = partition(region)
    if arn.split(":")[1] != want:
        ctx.error(path, f"is in partition {arn.split(':')[1]!r}, but region {region} is in {want!r}: "
                        f"use the boundary policy's ARN in {want} (`byoc iam-policy` prints it)")


def check_replication(ctx: _Ctx) -> None:
    """The replication destination is a third bucket, and SSE-KMS objects have a key to go to."""
    base = ("storage", "replication")
    conf = ctx.get(*base)
    if conf is None:
        return
    path = (*base, "destination_bucket_arn")
    target = str(ctx.get(*path)).rsplit(":", 1)[-1]
    for field in (("storage", "bucket_name"), ("storage", "access_logs", "bucket_name")):
        with contextlib.suppress(_Skip):
            if ctx.get(*field) == target:
                ctx.error(path, f"{target!r} is {'.'.join(field)}: replication needs a bucket of "
                                "your own in another region or account; name that bucket's ARN")
    enc = ctx.get("security", "encryption")
    sse_kms = bool(enc.get("enabled") and (enc.get("create_kms_key") or enc.get("kms_key_arn")))
    key = conf.get("destination_kms_key_arn")
    if sse_kms and key is None:
        ctx.error((*base, "destination_kms_key_arn"),
                  "is required: the data bucket uses SSE-KMS (security.encryption), and S3 replicates "
                  "SSE-KMS objects only with a key in the destination's region to encrypt the replicas; "
                  "give that key's ARN")
    elif not sse_kms and key is not None:
        ctx.warn((*base, "destination_kms_key_arn"),
                 "is used only for SSE-KMS objects; the data bucket uses SSE-S3, so the replicas are "
                 "encrypted as the destination bucket's default encryption says")


def check_backups(ctx: _Ctx) -> None:
    if ctx.get("storage", "backups", "enabled") is False:
        ctx.warn(
            ("storage", "backups", "enabled"),
            "backups are off: a lost data volume cannot be restored",
        )


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def check_assume_role(ctx: _Ctx) -> None:
    """The role to assume lives in the region's partition (STS in cn-north-1 cannot hand out a
    role of the aws partition)."""
    arn = ctx.get("aws", "assume_role", "role_arn")
    region = ctx.get("aws", "region")
    if not isinstance(arn, str) or not isinstance(region, str):
        return
    partition, wanted = arn.split(":")[1], _partition(region)
    if partition in ("aws", "aws-cn", "aws-us-gov") and partition != wanted:
        ctx.error(("aws", "assume_role", "role_arn"),
                  f"is in the {partition} partition but the region {region} is in {wanted}; "
                  f"give the role's ARN as arn:{wanted}:iam::<account>:role/<name>")


def check_tags(ctx: _Ctx) -> None:
    for key, value in ctx.items("tags"):
        assert isinstance(key, str)
        bad_key = _bad_tag_chars(key)
        if bad_key:
            ctx.error(
                ("tags",),
                f"key {key!r} has characters AWS tags do not allow ({bad_key}); "
                "use letters, digits, spaces and _ . : / = + - @",
                at=("tags", key),
            )
        bad_value = _bad_tag_chars(value) if isinstance(value, str) else ""
        if bad_value:
            ctx.error(
                ("tags", key),
                f"{value!r} has characters AWS tags do not allow "
                f"({bad_value}); use letters, digits, spaces and "
                "_ . : / = + - @",
            )


def _bad_tag_chars(text: str) -> str:
    if _TAG_TEXT.fullmatch(text):
        return ""
    bad = sorted({c for c in text if not _TAG_TEXT.fullmatch(c)})
    return " ".join(repr(c) for c in bad)


def check_password_rotation(ctx: _Ctx) -> None:
    """Scheduled rotation needs a way out of the private subnets: the rotation function reaches
    Secrets Manager and SSM over HTTPS through the NAT gateway (byoc makes no VPC endpoints)."""
    if ctx.get("security", "password_rotation", "enabled") is not True:
        return
    if ctx.get("network", "nat_gateway") == "none":
        ctx.error(("security", "password_rotation", "enabled"),
                  "needs a NAT gateway, but network.nat_gateway is none: the rotation function runs in the "
                  "private subnets and reaches Secrets Manager and SSM through the NAT gateway. Set "
                  "network.nat_gateway to single or per_az, or turn password_rotation off (and rotate with "
                  "`byoc rotate-password`)")


_CHECKS: tuple[Callable[[_Ctx], None], ...] = (
    check_proton_version,
    check_zones,
    check_alb_zones,
    check_vpc_cidr,
    check_subnets,
    check_allowed_cidrs,
    check_ssh_exposure,
    check_public_tls,
    check_private_link,
    check_bucket,
    check_log_bucket,
    check_encryption,
    check_password_rotation,
    check_permissions_boundary,
    check_replication,
    check_assume_role,
    check_backups,
    check_tags,
)
