"""CIDR parsing and subnet carving: one public and one private subnet per availability zone.

Carving is deterministic and independent of the order of the AZ list: the zone's last letter
picks its slot, so adding or removing a zone never renumbers the others.
"""

from __future__ import annotations

import ipaddress
import re

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MIN_VPC_PREFIX = 16
MAX_SUBNET_PREFIX = 28

_CIDR_SHAPE = re.compile(r"[0-9A-Fa-f.:]+/[0-9]{1,3}")


class CidrError(ValueError):
    """A CIDR or a carving request that cannot work; str() says why and what is allowed."""


def parse_cidr(text: str) -> IPNetwork:
    """An IPv4 or IPv6 network written in canonical CIDR form (host bits zero)."""
    if not _CIDR_SHAPE.fullmatch(text):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            bits = 32 if address.version == 4 else 128
            raise CidrError(f"{text!r} has no prefix length; for one address write {text}/{bits}")
        raise CidrError(f"{text!r} is not a CIDR block such as 10.0.0.0/16")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise CidrError(f"{text!r} is not a CIDR block such as 10.0.0.0/16") from None
    if network.network_address != ipaddress.ip_interface(text).ip:
        raise CidrError(f"{text!r} has host bits set; the network is {network}")
    if str(network) != text:
        raise CidrError(f"{text!r} is not in canonical form; write it as {network}")
    return network


def parse_vpc_cidr(text: str) -> ipaddress.IPv4Network:
    """A VPC's IPv4 range: canonical CIDR with a prefix AWS allows for a VPC (/16 to /28)."""
    network = parse_cidr(text)
    if not isinstance(network, ipaddress.IPv4Network):
        raise CidrError(f"{text!r} is IPv6; a VPC's primary range is IPv4, such as 10.0.0.0/16")
    if not MIN_VPC_PREFIX <= network.prefixlen <= MAX_SUBNET_PREFIX:
        raise CidrError(
            f"/{network.prefixlen} is outside what AWS allows for a VPC "
            f"(/{MIN_VPC_PREFIX} to /{MAX_SUBNET_PREFIX})"
        )
    return network


def az_index(az: str) -> int:
    """The slot of an availability zone: its last letter, a=0, b=1, ..."""
    last = az[-1:]
    if not ("a" <= last <= "z"):
        raise CidrError(f"{az!r} does not end in a zone letter")
    return ord(last) - ord("a")


def check_newbits(vpc: ipaddress.IPv4Network, newbits: int) -> int:
    """The subnet prefix length for ``newbits``, or CidrError when AWS could not create it."""
    if newbits < 1:
        raise CidrError(f"network.subnet_newbits must be at least 1 (got {newbits})")
    prefix = vpc.prefixlen + newbits
    if prefix > MAX_SUBNET_PREFIX:
        most = MAX_SUBNET_PREFIX - vpc.prefixlen
        hint = f"use at most {most}" if most >= 1 else "use a larger network.vpc_cidr"
        raise CidrError(
            f"network.subnet_newbits {newbits} on a /{vpc.prefixlen} VPC gives /{prefix} subnets, "
            f"smaller than AWS allows (/{MAX_SUBNET_PREFIX}); {hint}"
        )
    return prefix


def check_az_slot(vpc: ipaddress.IPv4Network, newbits: int, az: str) -> int:
    """The zone's slot, or CidrError when ``newbits`` leaves no room for that zone letter."""
    index = az_index(az)
    slots = 2 ** (newbits - 1)
    if index >= slots:
        last = chr(ord("a") + slots - 1)
        letters = "a" if slots == 1 else f"a to {last}"
        needed = index.bit_length() + 1
        hint = f"raise network.subnet_newbits to {needed}"
        if vpc.prefixlen + needed > MAX_SUBNET_PREFIX:
            hint += " with a larger network.vpc_cidr"
        raise CidrError(
            f"{az} does not fit: network.subnet_newbits {newbits} makes {slots} public and "
            f"{slots} private subnet slot{'s' if slots > 1 else ''}, for zones ending in "
            f"{letters} only; {hint}"
        )
    return index


def carve(vpc_cidr: str, newbits: int, az: str) -> tuple[str, str]:
    """(public_cidr, private_cidr) of ``az``: slots i and 2**(newbits-1) + i of the VPC split.

    >>> carve("10.0.0.0/16", 4, "us-west-2c")
    ('10.0.32.0/20', '10.0.160.0/20')
    """
    vpc = parse_cidr(vpc_cidr)
    if not isinstance(vpc, ipaddress.IPv4Network):
        raise CidrError(f"{vpc_cidr!r} is IPv6; subnets come from an IPv4 VPC range")
    prefix = check_newbits(vpc, newbits)
    index = check_az_slot(vpc, newbits, az)
    size = 2 ** (32 - prefix)
    base = int(vpc.network_address)
    public = ipaddress.IPv4Network((base + index * size, prefix))
    private = ipaddress.IPv4Network((base + (2 ** (newbits - 1) + index) * size, prefix))
    return str(public), str(private)
