"""Alert webhooks that are no way into the network monitoring_api runs in (server-side
request forgery, OWASP A10).

A webhook URL is checked when it is set and again at every delivery, since what a name
resolves to can change in between: its scheme, credentials and port, then every address
its host resolves to (none may be loopback, link-local, private, carrier-grade NAT,
multicast, unspecified, reserved, a cloud metadata address, or one of those inside an
IPv6 form). The alert is then sent to the very address that was checked, the URL's name
kept only in the Host header and in TLS (SNI and certificate check), so a second
resolution (DNS rebinding) has nothing to change. Redirects are not followed.

Hosts (optionally host:port) in MONITORING_WEBHOOK_ALLOWED_HOSTS pass even if private.

Every network failure is recorded alike ("not delivered") and takes the whole timeout,
so the stored outcome and its timing cannot tell an open port from a closed or filtered
one; the HTTP status is recorded only when the webhook answered.

Written here rather than taken from a library: of those on PyPI, safehttpx only GETs and
accepts a name when any one of its addresses is public; httpx-secure (which fits the
pins) validates only the address it picks after opening TCP probes, so closed, open and
denied ports are still contacted; advocate is built on requests and unmaintained since
2020; the rest are new single-author releases.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import httpx

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

NOT_DELIVERED = "not delivered"
# Ports a webhook may use without an allow-list entry: HTTP, HTTPS and their usual
# alternates; anything else (SSH, databases, brokers) is not a web hook.
WEBHOOK_PORTS = frozenset({80, 443, 8080, 8443})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Instance metadata services (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS ECS task
# metadata: 169.254.170.2; AWS over IPv6: fd00:ec2::254; Alibaba: 100.100.100.200) hand
# out credentials: refused even for an allowed host.
METADATA_ADDRESSES = frozenset(
    ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog"})
METADATA = "a cloud metadata address"
CARRIER_GRADE_NAT = IPv4Network("100.64.0.0/10")  # RFC 6598; not is_private in ipaddress
NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address


class WebhookRefused(Exception):
    """The webhook URL points where alerts may not go; the message says why."""


@dataclass(frozen=True)
class AllowedHost:
    """An operator's exception: a host name or address, on any port or on one."""

    host: str  # lower case without a trailing dot, or an address as ipaddress writes it
    port: int | None = None


@dataclass(frozen=True)
class WebhookPolicy:
    """Where webhooks may go besides public addresses on WEBHOOK_PORTS."""

    allowed: tuple[AllowedHost, ...] = ()
    ports: frozenset[int] = WEBHOOK_PORTS

    def allows(self, host: str, port: int) -> bool:
        """Whether an allow-list entry names this host (as `host_key` writes it) and port."""
        return any(a.host == host and a.port in (None, port) for a in self.allowed)


@dataclass(frozen=True)
class Target:
    """A webhook URL that passed the checks that need no resolution."""

    url: httpx.URL
    name: str  # the host as sent on the wire (IDNA), for resolution, Host and SNI
    port: int
    literal: IPAddress | None  # the host when the URL names an address
    allowed: bool  # an allow-list entry names it: private addresses pass


@dataclass(frozen=True)
class Delivery:
    """How one POST to a webhook went."""

    delivered: bool
    detail: str  # stored on the alert and shown to API callers
    cause: str | None = None  # for the operator's log only: which failure it was


def parse_allowed_hosts(text: str) -> tuple[AllowedHost, ...]:
    """Comma-separated `host`, `host:port`, `address`, `[v6 address]:port` entries, as
    MONITORING_WEBHOOK_ALLOWED_HOSTS holds them. Raises ValueError naming a bad entry."""
    return tuple(_allowed_host(entry.strip()) for entry in text.split(",") if entry.strip())


def _allowed_host(entry: str) -> AllowedHost:
    try:
        host, port = _split_host_port(entry)
        number = None if port is None else int(port)
        if number is not None and not 0 < number < 65536:
            raise ValueError(port)
        return AllowedHost(host_key(host), number)
    except ValueError:
        raise ValueError(
            f"MONITORING_WEBHOOK_ALLOWED_HOSTS: {entry!r} is not host, host:port, an address "
            "or [IPv6 address]:port (ports 1-65535)"
        ) from None


def _split_host_port(entry: str) -> tuple[str, str | None]:
    if entry.startswith("["):  # [IPv6] or [IPv6]:port
        host, closed, rest = entry[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(entry)
        return host, rest[1:] if rest else None
    if entry.count(":") == 1:  # more than one: a bare IPv6 address
        host, port = entry.split(":")
        return host, port
    return entry, None


def host_key(host: str) -> str:
    """A host as allow-list entries are compared: an address in its one canonical text
    (IPv4 in any legacy form and IPv4-mapped IPv6 as dotted decimal), else the name in
    lower case without a trailing dot. Raises ValueError for what cannot be a host."""
    address = literal_address(host)
    if address is not None:
        return str(_unmapped(address))
    name = host.lower().rstrip(".")
    if not name or ".." in name or any(c in name for c in "/@ []:"):
        raise ValueError(f"not a host: {host!r}")
    return name


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host names by itself, in every form a resolver takes as one
    (`::1`, `127.0.0.1`, and inet_aton's `2130706433`, `0x7f.1`, `0177.0.0.1`), or None
    for a name."""
    text = host.rstrip(".")
    try:
        return ip_address(text.split("%")[0])  # a zone (fe80::1%eth0) does not move it
    except ValueError:
        pass
    if not text or not all(c.isascii() and (c.isalnum() or c == ".") for c in text):
        return None
    try:
        return IPv4Address(socket.inet_aton(text))  # glibc's reading, which getaddrinfo uses
    except OSError:
        return None


def forbidden(address: IPAddress) -> str | None:
    """Why webhooks may not reach this address ("a loopback address", ...), or None for
    a public one. An IPv6 address carrying an IPv4 one (IPv4-mapped ::ffff:0:0/96, 6to4
    2002::/16, NAT64 64:ff9b::/96) is judged by both."""
    forms = [*_embedded(address), address]  # the IPv4 address says most about where
    if any(form in METADATA_ADDRESSES for form in forms):
        return METADATA
    return next(filter(None, map(_category, forms)), None)


def _category(address: IPAddress) -> str | None:
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in CARRIER_GRADE_NAT, "a carrier-grade NAT address (100.64.0.0/10)"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a globally reachable address"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _embedded(address: IPAddress) -> list[IPAddress]:
    if not isinstance(address, IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour]
    if address in NAT64:
        found.append(IPv4Address(address.packed[-4:]))
    return [a for a in found if a is not None]


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_url(url: str, policy: WebhookPolicy) -> Target:
    """The checks that need no resolution: an http(s) URL without credentials, on an
    allowed port, whose host is neither a metadata or localhost name nor, unless allowed,
    a forbidden address. Raises WebhookRefused with the reason."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise WebhookRefused(f"{url!r} is not a valid http(s) URL") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise WebhookRefused(f"only http and https webhooks are allowed, not {parsed.scheme!r}")
    if parsed.userinfo:
        raise WebhookRefused("a webhook URL may not carry a user name or password")
    try:
        name = parsed.raw_host.decode("ascii")
        key = host_key(name)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRefused(f"{url!r} is not a valid http(s) URL") from None
    port = DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
    allowed = policy.allows(key, port)
    if not allowed and port not in policy.ports:
        raise WebhookRefused(
            f"port {port} is not a webhook port ({', '.join(map(str, sorted(policy.ports)))}); "
            "MONITORING_WEBHOOK_ALLOWED_HOSTS can allow host:port"
        )
    if key in METADATA_NAMES:
        raise WebhookRefused(f"{key} is a cloud metadata service")
    if not allowed and (key == "localhost" or key.endswith(".localhost")):
        raise WebhookRefused(f"{key} is a loopback name (RFC 6761)")
    literal = literal_address(name)
    if literal is not None:
        written = name if name == str(literal) else f"{name} ({literal})"
        _check_address(literal, f"{written} is", allowed)
    return Target(parsed, name, port, literal, allowed)


def _check_address(address: IPAddress, what: str, allowed: bool) -> None:
    reason = forbidden(address)
    metadata = reason == METADATA
    if reason is None or (allowed and not metadata):
        return
    hint = "" if metadata else " (an operator can allow it in MONITORING_WEBHOOK_ALLOWED_HOSTS)"
    raise WebhookRefused(f"{what} {reason}, which alerts may not reach{hint}")


def check_addresses(target: Target, addresses: Iterable[IPAddress]) -> None:
    """Refuse a name if any address it resolves to is forbidden (WebhookRefused); the
    addresses are not named, the caller may not know them."""
    for address in addresses:
        _check_address(address, f"{target.name} resolves to", target.allowed)


async def resolve_system(name: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for a name, in its order of preference.
    Raises OSError (socket.gaierror) when the name does not resolve."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    return [ip_address(str(sockaddr[0]).split("%")[0]) for *_, sockaddr in found]


class WebhookSender:
    """Checks webhook URLs and POSTs alerts to them, with one client for the process."""

    def __init__(
        self,
        policy: WebhookPolicy,
        *,
        timeout: float,
        resolve: Resolver = resolve_system,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: see what would be sent
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.resolve = resolve
        # No proxies or .netrc from the environment (a proxy would resolve the name
        # itself), no redirects, and a connection per alert: a pooled TLS connection is
        # keyed by address only, so it must not carry a request for another name.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
        )

    async def check(self, url: str) -> None:
        """Refuse (WebhookRefused) a URL no alert may be sent to, as far as can be told
        now; a name that does not resolve (yet) passes and is checked at delivery."""
        target = check_url(url, self.policy)
        if target.literal is not None:
            return
        try:
            async with asyncio.timeout(self.timeout):
                addresses = await self.resolve(target.name, target.port)
        except (OSError, TimeoutError):
            return
        check_addresses(target, addresses)

    async def post(self, url: str, payload: dict[str, Any]) -> Delivery:
        """POST the JSON payload to the webhook; the outcome, never an exception. Every
        network failure answers NOT_DELIVERED once the whole timeout has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                target = check_url(url, self.policy)
                address = await self._address(target)
                status = await self._send(target, address, payload)
        except WebhookRefused as exc:
            return Delivery(False, f"{NOT_DELIVERED}: refused, {exc}")
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            return Delivery(False, NOT_DELIVERED, f"{type(exc).__name__}: {exc}"[:500])
        return Delivery(200 <= status < 300, f"HTTP {status}")

    async def _address(self, target: Target) -> IPAddress:
        """The address to connect to: the URL's own, or the first the name resolves to
        once every one of them has passed."""
        if target.literal is not None:
            return target.literal
        addresses = await self.resolve(target.name, target.port)
        if not addresses:
            raise OSError(f"{target.name} resolves to no address")
        check_addresses(target, addresses)
        return addresses[0]

    async def _send(self, target: Target, address: IPAddress, payload: dict[str, Any]) -> int:
        """POST to the checked address, naming the host only in Host and TLS; the
        answer's body is never read."""
        extensions = {}
        if target.url.scheme == "https" and target.literal is None:
            extensions["sni_hostname"] = target.name  # also the name the cert must match
        request = self._client.build_request(
            "POST",
            target.url.copy_with(host=str(address)),
            json=payload,
            headers={"Host": target.url.netloc.decode("ascii")},
            extensions=extensions,
        )
        response = await self._client.send(request, stream=True)
        await response.aclose()
        return response.status_code

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
