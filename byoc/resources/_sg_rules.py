"""Security-group rules: AWS's grouped IpPermissions <-> byoc's atomic rule dicts, and their diff.

A rule is ``{"protocol", "from_port", "to_port", <one source>, "description"}`` where the source
is ``cidr_block``, ``ipv6_cidr_block``, ``security_group_id`` or ``self: True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from byoc.errors import CloudError
from byoc.model import canonical_json

#: AWS reports some protocols by number; byoc names them (Terraform does the same).
PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}
SOURCES = ("cidr_block", "ipv6_cidr_block", "security_group_id", "self")

Rule = dict[str, Any]
#: a rule without its description: what AWS identifies a rule by
Ident = tuple[str, int, int, str, Any]


def protocol_name(protocol: Any) -> str:
    p = str(protocol).lower()
    return PROTOCOL_NAMES.get(p, p)


def sort_rules(rules: Iterable[Rule]) -> list[Rule]:
    """The stable order byoc keeps rule lists in (the blueprint sorts the same way)."""
    return sorted(rules, key=canonical_json)


def from_permissions(permissions: Iterable[Mapping[str, Any]], group_id: str) -> list[Rule]:
    """Split AWS's IpPermissions into atomic rules, normalised and sorted.

    Prefix-list sources are not managed by byoc and are left out.
    """
    rules: list[Rule] = []
    for perm in permissions:
        proto = protocol_name(perm.get("IpProtocol", "-1"))
        lo, hi = (0, 0) if proto == "-1" else (perm.get("FromPort", 0), perm.get("ToPort", 0))
        base: Rule = {"protocol": proto, "from_port": int(lo), "to_port": int(hi)}
        for r in perm.get("IpRanges") or ():
            rules.append({**base, "cidr_block": r["CidrIp"], "description": r.get("Description") or ""})
        for r in perm.get("Ipv6Ranges") or ():
            rules.append(
                {
                    **base,
                    "ipv6_cidr_block": r["CidrIpv6"],
                    "description": r.get("Description") or "",
                }
            )
        for pair in perm.get("UserIdGroupPairs") or ():
            gid = pair.get("GroupId")
            if not gid:
                continue
            source: Rule = {"self": True} if gid == group_id else {"security_group_id": gid}
            rules.append({**base, **source, "description": pair.get("Description") or ""})
    return sort_rules(rules)


def ident(rule: Mapping[str, Any]) -> Ident:
    """The rule minus its description, with AWS's equivalent spellings made equal."""
    proto = protocol_name(rule["protocol"])
    ports = (0, 0) if proto == "-1" else (int(rule["from_port"]), int(rule["to_port"]))
    sources = [k for k in SOURCES if k in rule]
    if len(sources) != 1:
        raise CloudError(f"a security group rule needs exactly one of {', '.join(SOURCES)}: {rule!r}")
    key = sources[0]
    value = True if key == "self" else str(rule[key])
    return (proto, ports[0], ports[1], key, value)


def to_permissions(
    rules: Iterable[Mapping[str, Any]], group_id: str, *, descriptions: bool = True
) -> list[dict[str, Any]]:
    """Group atomic rules back into IpPermissions (one per protocol and port range)."""
    perms: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rule in rules:
        proto, lo, hi, key, value = ident(rule)
        perm = perms.get((proto, lo, hi))
        if perm is None:
            perm = {"IpProtocol": proto}
            if proto != "-1":
                perm.update(FromPort=lo, ToPort=hi)
            perms[(proto, lo, hi)] = perm
        desc = rule.get("description") or ""
        extra = {"Description": desc} if descriptions and desc else {}
        if key == "cidr_block":
            perm.setdefault("IpRanges", []).append({"CidrIp": value, **extra})
        elif key == "ipv6_cidr_block":
            perm.setdefault("Ipv6Ranges", []).append({"CidrIpv6": value, **extra})
        else:
            gid = group_id if key == "self" else value
            perm.setdefault("UserIdGroupPairs", []).append({"GroupId": gid, **extra})
    return list(perms.values())


def _by_ident(rules: Iterable[Mapping[str, Any]], *, strict: bool) -> dict[Ident, str]:
    out: dict[Ident, str] = {}
    for rule in rules:
        i, desc = ident(rule), str(rule.get("description") or "")
        if strict and i in out and out[i] != desc:
            raise CloudError(f"two security group rules differ only in their description: {rule!r}")
        out[i] = desc
    return out


@dataclass
class RuleDiff:
    """What to call, in this order: authorize ``add``, update ``redescribe``, revoke ``remove``,
    then authorize ``readd`` (rules whose description is cleared: revoke + authorize)."""

    add: list[Rule] = field(default_factory=list)
    redescribe: list[Rule] = field(default_factory=list)
    remove: list[Rule] = field(default_factory=list)
    readd: list[Rule] = field(default_factory=list)


def _rule(i: Ident, desc: str) -> Rule:
    proto, lo, hi, key, value = i
    return {"protocol": proto, "from_port": lo, "to_port": hi, key: value, "description": desc}


def diff_rules(current: Iterable[Mapping[str, Any]], desired: Iterable[Mapping[str, Any]]) -> RuleDiff:
    """Set difference of atomic rules; a changed description is updated in place where AWS can."""
    cur, want = _by_ident(current, strict=False), _by_ident(desired, strict=True)
    d = RuleDiff()
    for i, desc in want.items():
        if i not in cur:
            d.add.append(_rule(i, desc))
        elif cur[i] != desc:
            if desc:
                d.redescribe.append(_rule(i, desc))
            else:  # UpdateSecurityGroupRuleDescriptions cannot be trusted to clear one
                d.remove.append(_rule(i, cur[i]))
                d.readd.append(_rule(i, desc))
    d.remove += [_rule(i, desc) for i, desc in cur.items() if i not in want]
    return d


def provider_rules(rules: Any) -> Any:
    """byoc's atomic rules as the provider's ``ingress``/``egress`` objects: one per (protocol,
    ports, description) with its sources gathered (``cidr_blocks``, ``ipv6_cidr_blocks``,
    ``security_groups``, ``self``), every key present, as Terraform plans them."""
    if not isinstance(rules, list):
        return rules  # UNKNOWN or null
    grouped: dict[tuple[Any, ...], Rule] = {}
    for r in rules:
        key = (protocol_name(r.get("protocol")), r.get("from_port"), r.get("to_port"),
               r.get("description", ""))
        out = grouped.setdefault(key, {
            "cidr_blocks": [], "description": key[3], "from_port": key[1], "ipv6_cidr_blocks": [],
            "prefix_list_ids": [], "protocol": key[0], "security_groups": [], "self": False,
            "to_port": key[2],
        })
        cidr = r.get("cidr_block")
        if isinstance(cidr, str) and ":" in cidr:
            out["ipv6_cidr_blocks"].append(cidr)
        elif cidr is not None:
            out["cidr_blocks"].append(cidr)
        if r.get("ipv6_cidr_block") is not None:
            out["ipv6_cidr_blocks"].append(r["ipv6_cidr_block"])
        if r.get("security_group_id") is not None:
            out["security_groups"].append(r["security_group_id"])
        if r.get("self"):
            out["self"] = True
    for out in grouped.values():
        for name in ("cidr_blocks", "ipv6_cidr_blocks", "security_groups"):
            if all(isinstance(v, str) for v in out[name]):
                out[name] = sorted(out[name])
    # a set has no order: rules from the group itself come last, since checkov's port checks
    # (CKV_AWS_24 …) stop at the first `self` rule and would not see an open rule after it
    return sorted(grouped.values(), key=lambda r: (
        r["self"], str(r["from_port"]).zfill(5), str(r["to_port"]).zfill(5), r["protocol"], r["description"]))
