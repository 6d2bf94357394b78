"""IPv4 addresses carried inside IPv6 ones, for the address bans and the webhook target rules.

An IPv6 address can carry an IPv4 address in several standard forms; a ban on an IPv4 address
or range must catch them all, and a webhook target must be judged by the IPv4 address it
reaches:

- IPv4-mapped ``::ffff:a.b.c.d`` (RFC 4291);
- IPv4-compatible ``::a.b.c.d`` (deprecated, RFC 4291; ``::`` and ``::1`` are not: only values
  from ``::1.0.0.0`` up count);
- NAT64, the well-known prefix ``64:ff9b::/96`` (RFC 6052);
- 6to4 ``2002:AABB:CCDD::/48`` (RFC 3056: bits 16 to 48);
- Teredo ``2001:0::/32`` (RFC 4380: the client's address, obfuscated in the last 32 bits).
"""

from __future__ import annotations

import ipaddress

IPv4 = ipaddress.IPv4Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _carried(addr: Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """(form, IPv4 address) of an IPv6 address of one of the forms above; the form is
    ``suffix`` (mapped, compatible, NAT64: the last 32 bits), ``6to4`` or ``teredo``."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    value = int(addr)
    if addr.ipv4_mapped is not None or 1 << 24 <= value < 1 << 32 or addr in NAT64:
        return "suffix", IPv4(value & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return "6to4", addr.sixtofour
    if addr.teredo is not None:
        return "teredo", addr.teredo[1]
    return None


def embedded_ipv4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``addr`` carries in one of the forms above, or None (an IPv4 address
    carries none)."""
    carried = _carried(addr)
    return carried[1] if carried else None


def embedded_ipv4_network(net: Network) -> ipaddress.IPv4Network | None:
    """The IPv4 range an IPv6 range of one of the forms above stands for, or None: a mapped,
    compatible or NAT64 range of /96 or longer (its last 32 bits), a 6to4 range of /16 or
    longer (bits 16 to 48; longer than /48 is still the one IPv4 address, since the rest is
    the site's own), a single Teredo address."""
    carried = _carried(net.network_address)
    if carried is None:
        return None
    form, inner = carried
    length = net.prefixlen
    bits = {"suffix": length - 96, "6to4": min(length - 16, 32),
            "teredo": 32 if length == 128 else -1}[form]
    if bits < 0:
        return None
    return ipaddress.IPv4Network(f"{inner}/{bits}", strict=False)
