"""The SSRF guard: which network addresses a media URL may reach.

A client must not make the server fetch from its own network (metadata services such
as 169.254.169.254, admin ports on localhost, other pods). The rule is on the resolved
addresses, not on the spelling of the host: ``127.1``, ``0x7f000001``, ``[::ffff:7f00:1]``
and a DNS name pointing at 10.0.0.1 are all the same address. IPv6 forms that embed an
IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by the IPv4 address inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from omni_sglang.media.errors import MediaError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address tunnels to, if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address is the one traffic is delivered to
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None when it is."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = blocked_reason(inner)
        return f"{reason}, embedded in {ip}" if reason else None
    # Order matters only for the message: the most specific name first.
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses of ``host``, resolved in the event loop's executor (never blocking)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise MediaError(f"media URL host {host!r} could not be resolved: {exc}") from exc
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop a zone id
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise MediaError(f"media URL host {host!r} has no address")
    return addresses


async def resolve_public(host: str, port: int) -> IPAddress:
    """The address to connect to, after checking that EVERY address of ``host`` is public.

    Checking all of them (not just the first) stops a name that round-robins between a
    public and a private address from getting through on a lucky draw.
    """
    addresses = await resolve(host, port)
    for ip in addresses:
        reason = blocked_reason(ip)
        if reason is not None:
            shown = host if str(ip) == host.strip("[]") else f"{host} ({ip})"
            raise MediaError(
                f"media URL host {shown} resolves to a non-public address ({reason}); "
                "only public internet hosts may be fetched"
            )
    return addresses[0]
