"""Webhook pushes reach public addresses and the networks the operator allows, nothing else.

A bank's webhook URL pointing inward (loopback, the cloud metadata address, the operator's
private network) is refused at each push, without naming the address; a name is pinned to the
address that was checked, its Host header kept. The pushes themselves: tests/test_webhooks.py.
"""

from __future__ import annotations

import ipaddress

import pytest

from pdo.delivery.egress import Egress, EgressRefused
from tests.webhook_receiver import LOOPBACK, LOOPBACK_CIDRS

PRIVATE_LINE = Egress.allowing(["10.8.0.0/16"])


@pytest.mark.parametrize(
    ("address", "egress", "permitted"),
    [
        ("8.8.8.8", Egress(), True),
        ("2606:4700::1111", Egress(), True),
        ("127.0.0.1", Egress(), False),  # loopback
        ("::1", Egress(), False),
        ("::ffff:127.0.0.1", Egress(), False),  # loopback, IPv4-mapped
        ("10.1.2.3", Egress(), False),  # private
        ("172.16.0.1", Egress(), False),
        ("192.168.1.1", Egress(), False),
        ("169.254.169.254", Egress(), False),  # a cloud's metadata service
        ("100.64.0.1", Egress(), False),  # carrier-grade NAT
        ("0.0.0.0", Egress(), False),
        ("fc00::1", Egress(), False),  # unique local
        ("fe80::1", Egress(), False),  # link local
        ("224.0.0.1", Egress(), False),  # multicast
        ("10.8.1.1", PRIVATE_LINE, True),  # a bank on the allowed private line
        ("::ffff:10.8.1.1", PRIVATE_LINE, True),
        ("10.9.0.1", PRIVATE_LINE, False),  # the rest of 10/8 stays closed
        ("127.0.0.1", PRIVATE_LINE, False),
        ("127.0.0.1", LOOPBACK, True),
    ],
)
def test_which_addresses_a_push_may_reach(address: str, egress: Egress, permitted: bool) -> None:
    assert egress.permits(ipaddress.ip_address(address)) is permitted


@pytest.mark.parametrize(
    ("url", "egress", "refused"),
    [
        ("https://bank.example/hook", Egress(), False),  # a name: judged at each push
        ("https://8.8.8.8/hook", Egress(), False),
        ("https://[2606:4700::1111]:8443/hook", Egress(), False),
        ("http://127.0.0.1:9/hook", Egress(), True),
        ("http://[::1]/hook", Egress(), True),
        ("http://[::ffff:169.254.169.254]/latest", Egress(), True),
        ("http://169.254.169.254/latest/meta-data", Egress(), True),
        ("http://10.8.1.1/hook", Egress(), True),
        ("http://127.1/hook", Egress(), True),  # IPv4 shorthands resolvers read without DNS
        ("http://0x7f.0.0.1/hook", Egress(), True),
        ("http://2130706433/hook", Egress(), True),
        ("http://134744072/hook", Egress(), False),  # 8.8.8.8
        ("http://localhost:8080/hook", Egress(), True),  # loopback by definition (RFC 6761)
        ("http://LOCALHOST./hook", Egress(), True),
        ("http://api.localhost/hook", Egress(), True),
        ("http://localhost.bank.example/hook", Egress(), False),  # a name like any other
        ("http://10.8.1.1/hook", PRIVATE_LINE, False),
        ("http://10.9.0.1/hook", PRIVATE_LINE, True),
        ("http://localhost/hook", LOOPBACK, False),
    ],
)
def test_which_webhook_urls_are_refused_as_written(url: str, egress: Egress, refused: bool) -> None:
    """Registration refuses a URL whose host is, without DNS, an address pushes may not reach."""
    assert egress.refuses_named_host(url) is refused


def test_a_name_pointing_inward_is_refused_without_naming_the_address() -> None:
    with pytest.raises(EgressRefused) as refused:
        Egress().pinned("http://localhost:8080/hook")
    assert "127.0.0.1" not in str(refused.value) and "PDO_WEBHOOK_ALLOWED_NETWORKS" in str(
        refused.value
    )
    with pytest.raises(EgressRefused, match="does not resolve"):
        Egress().pinned("http://no-such-host.invalid/hook")


def test_a_name_is_pinned_to_the_checked_address_with_its_host_header() -> None:
    egress = Egress.allowing([*LOOPBACK_CIDRS, "::1/128"])
    url, host, extensions = egress.pinned("https://localhost:8443/hook?x=1")
    assert (str(url), host, extensions) == (
        "https://127.0.0.1:8443/hook?x=1",
        {"Host": "localhost:8443"},
        {"sni_hostname": "localhost"},
    )
