"""Where webhook pushes may go: public addresses, and the networks the operator allows.

A bank names its webhook URL. Left alone, the dispatcher would POST wherever that name resolves,
the operator's own network included (a cloud metadata service, the ledger's database, an admin
port), and read the answer's status back to the bank. So just before each POST the host is
resolved, every address it resolves to is checked, and the POST goes to the checked address,
the name kept for the Host header and for TLS (SNI and the certificate): a name that answers
differently between the check and the connection (DNS rebinding) gains nothing.

Banks on a private line (专线) have private addresses: the operator allows their networks
(`PDO_WEBHOOK_ALLOWED_NETWORKS`, a JSON list of CIDRs). Refusals name no address, so the
dispatcher's answers teach a bank nothing about the operator's network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


class EgressRefused(Exception):
    """The webhook's host is not one the dispatcher may connect to; the message names no address."""


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs as networks; a malformed one raises ValueError naming it."""
    parsed = []
    for cidr in cidrs:
        try:
            parsed.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network (CIDR such as 10.8.0.0/16): {cidr!r}") from exc
    return tuple(parsed)


@dataclass(frozen=True)
class Egress:
    """The addresses webhook pushes may reach: public ones, plus `allowed` networks."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def allowing(cls, cidrs: Iterable[str]) -> Egress:
        return cls(networks(cidrs))

    def permits(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        if any(address in network for network in self.allowed):
            return True
        return address.is_global and not address.is_multicast

    def refuses_named_host(self, url: str) -> bool:
        """Whether the URL's host is, without asking DNS, one pushes may not reach.

        An address literal is judged as it is (in the shorthand IPv4 forms too); ``localhost`` is
        loopback by definition (RFC 6761). Any other name is judged when it is resolved, just
        before each push.
        """
        host = httpx.URL(url).raw_host.decode("ascii").lower().rstrip(".")
        if host == "localhost" or host.endswith(".localhost"):
            return not self.permits(LOOPBACK)
        try:
            address: Address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            try:  # the forms resolvers read as IPv4 without DNS: 127.1, 0x7f.1, 2130706433
                address = ipaddress.IPv4Address(socket.inet_aton(host))
            except OSError:
                return False
        return not self.permits(address)

    def address_for(self, host: str, port: int) -> str:
        """The checked address to connect to for host, or EgressRefused.

        Every address the name has must be permitted, not just the one used: a name that also
        points inward is refused outright.
        """
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise EgressRefused("the webhook host does not resolve") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
        if not addresses or not all(self.permits(a) for a in addresses):
            raise EgressRefused(
                "the webhook host resolves to an address that is not public; the operator "
                "allows private networks in PDO_WEBHOOK_ALLOWED_NETWORKS"
            )
        # IPv4 first: servers here often have no IPv6 route, and a name's IPv4 answer is tried
        # first by most clients anyway.
        return str(min(addresses, key=lambda a: a.version))

    def pinned(self, url: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
        """The URL to POST to (its host the checked address), its Host header, its extensions."""
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
        if port is None:
            raise EgressRefused("the webhook URL is not http(s)")
        address = self.address_for(host, port)  # raw_host: IPv6 without brackets, IDNA as ASCII
        return (
            parsed.copy_with(host=address),
            {"Host": parsed.netloc.decode("ascii")},
            {"sni_hostname": host},
        )


PUBLIC_ONLY = Egress()  # no private network allowed: the default wherever none is configured
