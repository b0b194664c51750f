"""Subnet carving: deterministic slots per zone letter, and clear errors when they do not fit."""

from __future__ import annotations

import ipaddress

import pytest

from byoc.spec.cidr import CidrError, az_index, carve, parse_cidr, parse_vpc_cidr


@pytest.mark.parametrize(
    ("vpc", "newbits", "az", "public", "private"),
    [
        ("10.0.0.0/16", 4, "us-west-2a", "10.0.0.0/20", "10.0.128.0/20"),
        ("10.0.0.0/16", 4, "us-west-2b", "10.0.16.0/20", "10.0.144.0/20"),
        ("10.0.0.0/16", 4, "us-west-2c", "10.0.32.0/20", "10.0.160.0/20"),
        ("10.0.0.0/16", 4, "us-west-2h", "10.0.112.0/20", "10.0.240.0/20"),
        ("10.0.0.0/16", 1, "us-west-2a", "10.0.0.0/17", "10.0.128.0/17"),
        ("10.0.0.0/16", 2, "eu-central-1b", "10.0.64.0/18", "10.0.192.0/18"),
        ("172.16.0.0/20", 3, "us-east-1d", "172.16.6.0/23", "172.16.14.0/23"),
        ("192.168.0.0/24", 4, "us-gov-west-1a", "192.168.0.0/28", "192.168.0.128/28"),
        ("10.0.0.0/16", 12, "us-west-2z", "10.0.1.144/28", "10.0.129.144/28"),
    ],
)
def test_carve(vpc: str, newbits: int, az: str, public: str, private: str) -> None:
    assert carve(vpc, newbits, az) == (public, private)


def test_carving_ignores_the_order_and_number_of_zones() -> None:
    one = {az: carve("10.0.0.0/16", 4, az) for az in ["us-west-2a", "us-west-2b", "us-west-2c"]}
    other = {az: carve("10.0.0.0/16", 4, az) for az in ["us-west-2c", "us-west-2a"]}
    assert other == {az: one[az] for az in other}


def test_carved_subnets_never_overlap_and_stay_inside_the_vpc() -> None:
    vpc = ipaddress.ip_network("10.20.0.0/16")
    nets = []
    for letter in "abcdefgh":
        nets += [ipaddress.ip_network(c) for c in carve(str(vpc), 4, f"us-west-2{letter}")]
    assert all(n.subnet_of(vpc) for n in nets)  # type: ignore[arg-type]
    assert len({str(n) for n in nets}) == 16
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            assert not a.overlaps(b)


@pytest.mark.parametrize(
    ("vpc", "newbits", "az", "message"),
    [
        (
            "10.0.0.0/16",
            1,
            "us-west-2b",
            "us-west-2b does not fit: network.subnet_newbits 1 makes 1 public and 1 private "
            "subnet slot, for zones ending in a only; raise network.subnet_newbits to 2",
        ),
        (
            "10.0.0.0/16",
            2,
            "us-west-2c",
            "us-west-2c does not fit: network.subnet_newbits 2 makes 2 public and 2 private "
            "subnet slots, for zones ending in a to b only; raise network.subnet_newbits to 3",
        ),
        (
            "10.0.0.0/26",
            2,
            "us-west-2c",
            "us-west-2c does not fit: network.subnet_newbits 2 makes 2 public and 2 private "
            "subnet slots, for zones ending in a to b only; raise network.subnet_newbits to 3 "
            "with a larger network.vpc_cidr",
        ),
        (
            "10.0.0.0/16",
            13,
            "us-west-2a",
            "network.subnet_newbits 13 on a /16 VPC gives /29 subnets, smaller than AWS allows "
            "(/28); use at most 12",
        ),
        (
            "10.0.0.0/28",
            1,
            "us-west-2a",
            "network.subnet_newbits 1 on a /28 VPC gives /29 subnets, smaller than AWS allows "
            "(/28); use a larger network.vpc_cidr",
        ),
        ("10.0.0.0/16", 0, "us-west-2a", "network.subnet_newbits must be at least 1 (got 0)"),
        ("10.0.0.0/16", 4, "us-west-2-lax-1", "'us-west-2-lax-1' does not end in a zone letter"),
        ("10.0.1.0/16", 4, "us-west-2a", "'10.0.1.0/16' has host bits set; the network is "
         "10.0.0.0/16"),
        ("fd00::/48", 4, "us-west-2a", "'fd00::/48' is IPv6; subnets come from an IPv4 VPC range"),
    ],
)
def test_carve_errors(vpc: str, newbits: int, az: str, message: str) -> None:
    with pytest.raises(CidrError) as caught:
        carve(vpc, newbits, az)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.0", "'10.0.0.0' has no prefix length; for one address write 10.0.0.0/32"),
        ("2001:db8::1", "'2001:db8::1' has no prefix length; for one address write "
         "2001:db8::1/128"),
        ("10.0.0/16", "'10.0.0/16' is not a CIDR block such as 10.0.0.0/16"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR block such as 10.0.0.0/16"),
        ("10.0.0.0/255.255.0.0", "'10.0.0.0/255.255.0.0' is not a CIDR block such as 10.0.0.0/16"),
        ("256.0.0.0/8", "'256.0.0.0/8' is not a CIDR block such as 10.0.0.0/16"),
        ("10.1.2.3/8", "'10.1.2.3/8' has host bits set; the network is 10.0.0.0/8"),
        ("10.0.0.0/08", "'10.0.0.0/08' is not in canonical form; write it as 10.0.0.0/8"),
        ("2001:DB8::/32", "'2001:DB8::/32' is not in canonical form; write it as 2001:db8::/32"),
        (" 10.0.0.0/8", "' 10.0.0.0/8' is not a CIDR block such as 10.0.0.0/16"),
        ("", "'' is not a CIDR block such as 10.0.0.0/16"),
    ],
)
def test_parse_cidr_errors(text: str, message: str) -> None:
    with pytest.raises(CidrError) as caught:
        parse_cidr(text)
    assert str(caught.value) == message


def test_parse_cidr_accepts_canonical_ipv4_and_ipv6() -> None:
    assert str(parse_cidr("0.0.0.0/0")) == "0.0.0.0/0"
    assert str(parse_cidr("203.0.113.7/32")) == "203.0.113.7/32"
    assert str(parse_cidr("2001:db8::/32")) == "2001:db8::/32"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.0/8", "/8 is outside what AWS allows for a VPC (/16 to /28)"),
        ("10.0.0.0/30", "/30 is outside what AWS allows for a VPC (/16 to /28)"),
        ("fd00::/56", "'fd00::/56' is IPv6; a VPC's primary range is IPv4, such as 10.0.0.0/16"),
    ],
)
def test_vpc_cidr_limits(text: str, message: str) -> None:
    with pytest.raises(CidrError) as caught:
        parse_vpc_cidr(text)
    assert str(caught.value) == message
    assert str(parse_vpc_cidr("10.0.0.0/16")) == "10.0.0.0/16"
    assert str(parse_vpc_cidr("10.0.0.0/28")) == "10.0.0.0/28"


def test_az_index() -> None:
    assert [az_index(f"us-west-2{c}") for c in "abz"] == [0, 1, 25]
    with pytest.raises(CidrError):
        az_index("")
