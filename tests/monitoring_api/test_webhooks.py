"""Alert webhooks are no way into the network monitoring_api runs in: URLs pointing at
loopback, link-local, private, carrier-grade NAT, multicast, unspecified, reserved or
cloud metadata addresses (in any spelling), other schemes, credentials and odd ports
are refused when set and never called at delivery, even when DNS changes in between;
an operator's allow-list opens chosen hosts; and a failed delivery does not tell an open
port from a closed or silent one.

No test here sends anything beyond loopback: where a check could let a request through
to another address, the sender's transport is an in-memory recorder."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gits_common.monitoring import Thresholds
from monitoring_api.app import create_app
from monitoring_api.settings import load_settings
from monitoring_api.webhooks import (
    NOT_DELIVERED,
    AllowedHost,
    WebhookPolicy,
    WebhookRefused,
    WebhookSender,
    check_url,
    literal_address,
    parse_allowed_hosts,
)
from tests.monitoring_api.conftest import (
    DEMO,
    Listener,
    Names,
    Webhook,
    hermetic,
    monitoring_settings,
    nowhere,
    sampled,
)

NO_EXCEPTIONS = WebhookPolicy()
PUBLIC = "93.184.216.34"  # only ever resolved to in these tests, never connected to
FORBIDDEN_V4 = [
    IPv4Network(n)
    for n in (
        "127.0.0.0/8",  # loopback
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local, with the metadata address
        "100.64.0.0/10",  # carrier-grade NAT
        "224.0.0.0/4",  # multicast
        "0.0.0.0/8",  # unspecified, "this network"
        "240.0.0.0/4",  # reserved, with the broadcast address
    )
]
FORBIDDEN_V6 = [
    IPv6Network(n)
    for n in (
        "::1/128",  # loopback
        "::/128",  # unspecified
        "fe80::/10",  # link-local
        "fc00::/7",  # unique local, with fd00:ec2::254
        "ff00::/8",  # multicast
    )
]
CLEAN_PORTS = ["", ":80", ":443", ":8080", ":8443"]  # so that the address alone refuses


def in_network(network: IPv4Network | IPv6Network) -> st.SearchStrategy:
    return st.integers(0, network.num_addresses - 1).map(lambda i: network[i])


MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96


# Every way a URL can write an IPv4 address, as resolvers (inet_aton) and WHATWG read it
V4_FORMS: dict[str, Callable[[IPv4Address], str]] = {
    "dotted": str,
    "trailing dot": lambda a: f"{a}.",
    "decimal": lambda a: str(int(a)),
    "hex": lambda a: hex(int(a)),
    "dotted hex": lambda a: ".".join(hex(b) for b in a.packed),
    "dotted octal": lambda a: ".".join(f"0{b:o}" for b in a.packed),
    "three parts": lambda a: f"{a.packed[0]}.{a.packed[1]}.{int.from_bytes(a.packed[2:])}",
    "two parts": lambda a: f"{a.packed[0]}.{int.from_bytes(a.packed[1:])}",
    "IPv4-mapped": lambda a: f"[::ffff:{a}]",
    "IPv4-mapped hex": lambda a: f"[{IPv6Address(MAPPED_PREFIX + a.packed)}]",
    "IPv4-mapped long": lambda a: f"[0:0:0:0:0:ffff:{a}]",
    "6to4": lambda a: f"[2002:{a.packed.hex()[:4]}:{a.packed.hex()[4:]}::1]",
    "NAT64": lambda a: f"[64:ff9b::{a}]",
}
V6_FORMS: dict[str, Callable[[IPv6Address], str]] = {
    "compressed": lambda a: f"[{a.compressed}]",
    "exploded": lambda a: f"[{a.exploded}]",
    "upper case": lambda a: f"[{a.exploded.upper()}]",
}
NUMERIC_V4_FORMS = [f for f in V4_FORMS if not f.startswith(("IPv4", "6to4", "NAT64"))]

forbidden_hosts = st.one_of(
    st.builds(
        lambda address, form: V4_FORMS[form](address),
        st.sampled_from(FORBIDDEN_V4).flatmap(in_network),
        st.sampled_from(list(V4_FORMS)),
    ),
    st.builds(
        lambda address, form: V6_FORMS[form](address),
        st.sampled_from(FORBIDDEN_V6).flatmap(in_network),
        st.sampled_from(list(V6_FORMS)),
    ),
)
forbidden_urls = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}{port}/alerts",
    st.sampled_from(["http", "https"]),
    forbidden_hosts,
    st.sampled_from(CLEAN_PORTS),
)


def as_put(url: str) -> str | None:
    """The URL as PUT stores it (pydantic's WHATWG reading), or None where PUT already
    refuses it as no http(s) URL."""
    try:
        return str(Thresholds.model_validate({"webhook_url": url}).webhook_url)
    except ValidationError:
        return None


def refusal(url: str, policy: WebhookPolicy = NO_EXCEPTIONS) -> str:
    with pytest.raises(WebhookRefused) as refused:
        check_url(url, policy)
    return str(refused.value)


class Recorder(httpx.AsyncBaseTransport):
    """A transport that sends nothing: it records each request and answers 204."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204)


def deliver(sender: WebhookSender, url: str) -> tuple[bool, str, str | None, float]:
    """POST one alert; (delivered, stored detail, logged cause, seconds it took)."""

    async def run() -> tuple[bool, str, str | None, float]:
        started = time.monotonic()
        try:
            outcome = await sender.post(url, {"id": 1, "metric": "drift_share"})
        finally:
            await sender.close()
        return outcome.delivered, outcome.detail, outcome.cause, time.monotonic() - started

    return asyncio.run(run())


def check(sender: WebhookSender, url: str) -> None:
    async def run() -> None:
        try:
            await sender.check(url)
        finally:
            await sender.close()

    asyncio.run(run())


# --- Forbidden addresses, in every spelling ------------------------------------------


@given(forbidden_urls)
@settings(max_examples=400)
def test_forbidden_addresses_are_refused_in_every_form(url):
    # The URL as sent, read as httpx and the resolver read it
    refusal(url)
    # and as PUT stores it: refused for its address, whatever the spelling
    stored = as_put(url)
    if stored is not None:
        assert "which alerts may not reach" in refusal(stored)


@given(
    address=st.sampled_from([IPv4Network("8.0.0.0/8"), IPv4Network("93.184.0.0/16")]).flatmap(
        in_network
    ),
    form=st.sampled_from(NUMERIC_V4_FORMS),
)
def test_every_spelling_of_an_address_means_what_the_resolver_reads(address, form):
    # Given an IPv4 address written in one of the forms C's inet_aton takes
    host = V4_FORMS[form](address)

    # Then the check reads the same address getaddrinfo would connect to,
    if not host.endswith("."):  # (which asks DNS about a trailing dot: no test does)
        found = socket.getaddrinfo(host, 80, flags=socket.AI_NUMERICHOST)[0][4][0]
        assert ip_address(found) == address
    assert literal_address(host) == address
    # and PUT stores that address, which passes: it is public
    stored = as_put(f"http://{host}/x")
    assert stored is not None
    assert check_url(stored, NO_EXCEPTIONS).literal == address


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
        ("http://METADATA.google.internal./computeMetadata/v1/", "cloud metadata"),
        ("http://localhost:8080/", "loopback"),
        ("http://api.localhost/", "loopback"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://[2002:a00:1::1]/", "private"),  # 6to4 of 10.0.0.1
        ("http://[64:ff9b::7f00:1]/", "loopback"),  # NAT64 of 127.0.0.1
        ("ftp://hooks.example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://hooks.example.com:70/x", "only http and https"),
        ("http://user:secret@hooks.example.com/x", "user name or password"),
        ("http://user@hooks.example.com/x", "user name or password"),
        ("http://hooks.example.com:22/x", "port 22 is not a webhook port"),
        ("https://hooks.example.com:6379/x", "port 6379"),
        ("http://hooks.example.com:0/x", "port 0"),
        ("http://hooks..example.com/x", "not a valid"),
    ],
)
def test_schemes_credentials_ports_and_metadata_are_refused(url, why):
    assert why in refusal(url)


# --- The allow-list --------------------------------------------------------------------


def test_the_allow_list_is_read_from_the_setting(monkeypatch):
    monkeypatch.setenv(
        "MONITORING_WEBHOOK_ALLOWED_HOSTS",
        " Hooks.Example.com. , 10.0.0.5:8443,[fd00::5]:443, 0x7f.1, ::ffff:10.1.1.1,,",
    )

    assert load_settings().webhook_allowed_hosts == (
        AllowedHost("hooks.example.com"),
        AllowedHost("10.0.0.5", 8443),
        AllowedHost("fd00::5", 443),
        AllowedHost("127.0.0.1"),
        AllowedHost("10.1.1.1"),
    )


@pytest.mark.parametrize(
    "entry", ["hooks.example.com:https", "10.0.0.5:0", "10.0.0.5:65536", "[fd00::5", "[::1]x"]
)
def test_a_bad_allow_list_entry_stops_the_service_naming_it(monkeypatch, entry):
    monkeypatch.setenv("MONITORING_WEBHOOK_ALLOWED_HOSTS", f"hooks.example.com,{entry}")

    with pytest.raises(ValueError, match="MONITORING_WEBHOOK_ALLOWED_HOSTS") as bad:
        load_settings()
    assert repr(entry) in str(bad.value)


@given(
    address=in_network(IPv4Network("10.0.0.5/32")),
    form=st.sampled_from([f for f in V4_FORMS if f not in ("6to4", "NAT64")]),
)
def test_an_allowed_host_passes_in_any_spelling_on_its_port_only(address, form):
    policy = WebhookPolicy(parse_allowed_hosts("10.0.0.5:8443"))
    host = V4_FORMS[form](address)
    stored = as_put(f"http://{host}:8443/x")
    assert stored is not None

    assert check_url(stored, policy).allowed
    assert "private address" in refusal(stored.replace(":8443", ":443"), policy)


def test_an_allowed_host_passes_even_if_private_but_never_metadata():
    policy = WebhookPolicy(
        parse_allowed_hosts("hooks.internal.test,127.0.0.1,169.254.169.254,localhost")
    )

    assert check_url("http://hooks.internal.test:9000/x", policy).allowed  # any port
    assert check_url("http://127.0.0.1:5000/x", policy).allowed
    assert check_url("http://localhost:5000/x", policy).allowed
    assert "cloud metadata" in refusal("http://169.254.169.254/", policy)
    assert "cloud metadata" in refusal("http://metadata.google.internal/", policy)
    assert "private" in refusal("http://10.0.0.1/", policy)  # not on the list


# --- At delivery -----------------------------------------------------------------------


@given(forbidden_urls)
@settings(max_examples=200)
def test_forbidden_addresses_are_never_called(url):
    # Given a webhook URL stored before it could be checked (or by an older version)
    names, recorder = Names(), Recorder()
    sender = WebhookSender(NO_EXCEPTIONS, timeout=1, resolve=names, transport=recorder)

    delivered, detail, _, _ = deliver(sender, url)

    # Then nothing was sent, nor was DNS asked about an address
    assert not delivered
    assert detail.startswith(f"{NOT_DELIVERED}: refused")
    assert recorder.requests == []
    assert names.asked == []


@given(form=st.sampled_from(list(V4_FORMS)))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_loopback_in_every_form_never_reaches_a_listening_receiver(form):
    # Given a receiver on loopback, on a port the policy would take
    with Webhook() as hook:
        port = int(hook.url.split(":")[2].split("/")[0])
        policy = WebhookPolicy(ports=frozenset({port}))
        url = f"http://{V4_FORMS[form](IPv4Address('127.0.0.1'))}:{port}/alerts"

        for written in filter(None, (url, as_put(url))):
            delivered, detail, _, _ = deliver(WebhookSender(policy, timeout=1), written)
            assert not delivered and "refused" in detail

        # Then it received nothing
        assert hook.received == []


def test_a_name_is_resolved_once_and_the_alert_goes_to_the_address_checked(webhook):
    # Given an allowed name that only the service's own resolution knows
    port = int(webhook.url.split(":")[2].split("/")[0])
    names = Names({"hook.test": ["127.0.0.1"]})
    sender = WebhookSender(
        WebhookPolicy(parse_allowed_hosts("hook.test")), timeout=2, resolve=names
    )

    delivered, detail, _, _ = deliver(sender, f"http://hook.test:{port}/alerts")

    # Then the alert reached the address resolved once, addressed to the name
    assert (delivered, detail) == (True, "HTTP 200")
    assert names.asked == ["hook.test"]
    assert webhook.hosts == [f"hook.test:{port}"]
    assert webhook.received == [{"id": 1, "metric": "drift_share"}]


def test_dns_rebinding_between_put_and_delivery_is_refused(webhook):
    # Given a name that resolves to a public address when set, to loopback at delivery
    port = int(webhook.url.split(":")[2].split("/")[0])
    rebinding = Names({"rebind.test": [PUBLIC]})
    policy = WebhookPolicy(ports=frozenset({port}))
    url = f"http://rebind.test:{port}/alerts"
    check(WebhookSender(policy, timeout=2, resolve=rebinding), url)  # as PUT: passes
    rebinding.names["rebind.test"] = [IPv4Address("127.0.0.1")]

    delivered, detail, _, _ = deliver(WebhookSender(policy, timeout=2, resolve=rebinding), url)

    # Then the delivery checked again, and the receiver got nothing
    assert not delivered
    assert detail == (
        f"{NOT_DELIVERED}: refused, rebind.test resolves to a loopback address, which alerts "
        "may not reach (an operator can allow it in MONITORING_WEBHOOK_ALLOWED_HOSTS)"
    )
    assert webhook.received == []


def test_every_address_a_name_resolves_to_is_checked():
    names = Names({"mixed.test": [PUBLIC, "192.168.1.10"]})
    recorder = Recorder()

    with pytest.raises(WebhookRefused, match=r"mixed\.test resolves to a private address"):
        check(WebhookSender(NO_EXCEPTIONS, timeout=1, resolve=names), "http://mixed.test/x")
    sender = WebhookSender(NO_EXCEPTIONS, timeout=1, resolve=names, transport=recorder)
    delivered, detail, _, _ = deliver(sender, "http://mixed.test/x")

    assert not delivered and "refused" in detail
    assert recorder.requests == []


def test_a_public_name_is_sent_to_its_checked_address_with_the_name_in_host_and_tls():
    names = Names({"hooks.example.com": [PUBLIC, "2606:2800:220:1::1"]})
    recorder = Recorder()
    sender = WebhookSender(NO_EXCEPTIONS, timeout=1, resolve=names, transport=recorder)

    delivered, detail, _, _ = deliver(sender, "https://hooks.example.com/x?token=abc")

    assert (delivered, detail) == (True, "HTTP 204")
    (sent,) = recorder.requests
    assert str(sent.url) == f"https://{PUBLIC}/x?token=abc"
    assert sent.headers["Host"] == "hooks.example.com"
    assert sent.extensions["sni_hostname"] == "hooks.example.com"


def test_a_redirect_is_not_followed():
    # Given a webhook that redirects to a service on loopback
    with Webhook() as inside, Webhook(status=302, location=inside.url) as hook:
        sender = WebhookSender(WebhookPolicy(parse_allowed_hosts("127.0.0.1")), timeout=2)

        delivered, detail, _, _ = deliver(sender, hook.url)

        # Then the redirect is the answer, and the service behind it got nothing
        assert (delivered, detail) == (False, "HTTP 302")
        assert len(hook.received) == 1
        assert inside.received == []


# --- Failures tell nothing about the network -------------------------------------------

TIMEOUT = 0.5


def test_every_network_failure_is_recorded_alike_after_the_whole_timeout():
    # Given a closed port, a port that accepts and drops, a port that accepts and never
    # answers, a name that does not resolve, and TLS to a server that speaks none
    policy = WebhookPolicy(parse_allowed_hosts("127.0.0.1,gone.test"))
    outcomes = {}
    with (
        Listener(hold=False) as dropping,
        Listener(hold=True) as silent,
        Webhook() as plain,
    ):
        for kind, url in {
            "closed": nowhere(),
            "dropping": dropping.url,
            "silent": silent.url,
            "no such name": "http://gone.test:8080/alerts",
            "no TLS": plain.url.replace("http://", "https://"),
        }.items():
            sender = WebhookSender(policy, timeout=TIMEOUT, resolve=Names())
            outcomes[kind] = deliver(sender, url)
        assert dropping.accepted == 1 and silent.accepted == 1

    # Then every one stored the same detail, and took the timeout, give or take
    assert {detail for _, detail, _, _ in outcomes.values()} == {NOT_DELIVERED}
    assert not any(delivered for delivered, _, _, _ in outcomes.values())
    for kind, (*_, seconds) in outcomes.items():
        assert TIMEOUT - 0.05 <= seconds <= TIMEOUT + 0.5, (kind, seconds)
    # while the log still tells the operator which failure it was
    causes = {kind: cause for kind, (_, _, cause, _) in outcomes.items()}
    assert causes["closed"] and causes["closed"].startswith("ConnectError")
    assert causes["silent"] and causes["silent"].startswith(("ReadTimeout", "TimeoutError"))


def test_a_refused_port_and_a_dropping_listener_store_the_same_detail(apis, auth, stage):
    # Given a use case whose every point alerts, and a webhook that fails in two ways
    use_case = stage.use_case("hookfail")
    stage.produce(use_case, sampled(DEMO).iloc[:100])
    settings_ = monitoring_settings(apis, alert_cooldown_seconds=0, webhook_timeout_seconds=TIMEOUT)
    url = f"/monitoring_api/use_cases/{use_case.name}"
    details, seconds = [], []

    with TestClient(hermetic(create_app(settings_)), headers=auth) as client:
        with Listener(hold=False) as dropping:
            for webhook_url in (nowhere(), dropping.url):
                limits = {"drift_share": 0.0, "webhook_url": webhook_url}
                assert client.put(f"{url}/thresholds", json=limits).status_code == 200
                started = time.monotonic()
                point = client.post(f"{url}/history/run").json()
                seconds.append(time.monotonic() - started)
                (alert,) = point["alerts"]
                details.append((alert["delivery"], alert["delivery_detail"]))
        stored = client.get(f"{url}/alerts").json()

    # Then both were stored alike, and neither answered sooner than the timeout
    assert details == [("failed", NOT_DELIVERED)] * 2
    assert [(a["delivery"], a["delivery_detail"]) for a in stored] == details
    assert all(s >= TIMEOUT for s in seconds), seconds


# --- Through PUT /thresholds -----------------------------------------------------------


@pytest.fixture
def strict_client(apis, auth):
    """A monitoring_api without an allow-list; names: one public, one private, one both."""
    names = Names(
        {
            "hooks.example.com": [PUBLIC],
            "intranet.test": ["10.1.2.3"],
            "mixed.test": [PUBLIC, "fe80::1"],
        }
    )
    app = hermetic(create_app(monitoring_settings(apis, webhook_allowed_hosts=())), names)
    with TestClient(app, headers=auth) as client:
        yield client


@pytest.fixture
def limits_url(stage):
    return f"/monitoring_api/use_cases/{stage.use_case('hookput', upload=False).name}/thresholds"


@given(forbidden_urls)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_put_refuses_forbidden_addresses_in_every_form_and_keeps_what_was_stored(
    strict_client, limits_url, url
):
    before = {"drift_share": 0.2, "webhook_url": "https://hooks.example.com/x"}
    assert strict_client.put(limits_url, json=before).status_code == 200

    refused = strict_client.put(limits_url, json={"drift_share": 0.9, "webhook_url": url})

    assert refused.status_code == 422, url
    assert "webhook_url" in refused.json()["detail"]
    assert strict_client.get(limits_url).json()["webhook_url"] == before["webhook_url"]


@pytest.mark.parametrize(
    ("webhook_url", "why"),
    [
        ("http://intranet.test/x", "intranet.test resolves to a private address"),
        ("http://mixed.test/x", "mixed.test resolves to a link-local address"),
        ("http://127.0.0.1:8080/x", "127.0.0.1 is a loopback address"),
        ("http://2130706433:8080/x", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/x", "is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://metadata.google.internal/", "cloud metadata"),
        ("http://user:pw@hooks.example.com/x", "user name or password"),
        ("http://hooks.example.com:5432/x", "port 5432 is not a webhook port"),
        ("gopher://hooks.example.com/x", "URL scheme should be 'http' or 'https'"),
    ],
)
def test_put_names_the_field_and_why(strict_client, limits_url, webhook_url, why):
    refused = strict_client.put(limits_url, json={"webhook_url": webhook_url})

    assert refused.status_code == 422
    body = refused.json()
    assert body["detail"].startswith(("webhook_url: ", "invalid request: body.webhook_url: "))
    assert why in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "webhook_url"]


def test_put_takes_public_hosts_and_names_that_do_not_resolve_yet(strict_client, limits_url):
    for webhook_url in ("https://hooks.example.com/x", "http://not-yet.test:8080/x", None):
        answer = strict_client.put(limits_url, json={"webhook_url": webhook_url})
        assert answer.status_code == 200, answer.text
        assert strict_client.get(limits_url).json()["webhook_url"] == webhook_url


def test_an_allowed_local_receiver_gets_its_alerts_and_others_are_refused(
    apis, auth, stage, webhook
):
    # Given the operator allows the receiver's own host and port, and nothing else
    port = int(webhook.url.split(":")[2].split("/")[0])
    settings_ = monitoring_settings(
        apis, webhook_allowed_hosts=parse_allowed_hosts(f"127.0.0.1:{port}")
    )
    use_case = stage.use_case("hookallow")
    stage.produce(use_case, sampled(DEMO).iloc[:100])
    url = f"/monitoring_api/use_cases/{use_case.name}"

    with TestClient(hermetic(create_app(settings_)), headers=auth) as client:
        other = {"drift_share": 0.0, "webhook_url": "http://127.0.0.1:8080/x"}
        refused = client.put(f"{url}/thresholds", json=other)
        limits = {"drift_share": 0.0, "webhook_url": webhook.url}
        assert client.put(f"{url}/thresholds", json=limits).status_code == 200
        point = client.post(f"{url}/history/run").json()

    # Then another port of the same host is refused, and the alert reached the receiver
    assert refused.status_code == 422
    assert "127.0.0.1 is a loopback address" in refused.json()["detail"]
    (alert,) = point["alerts"]
    assert (alert["delivery"], alert["delivery_detail"]) == ("delivered", "HTTP 200")
    assert [a["id"] for a in webhook.received] == [alert["id"]]
