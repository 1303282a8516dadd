"""SSRF: a webhook never reaches the server's own network, whatever the URL says or the DNS answers."""

from __future__ import annotations

import socket

import pytest

from alerts.channels import DeliveryError
from alerts.channels.netguard import AddressRefused, resolve, url_problem
from alerts.channels.webhook import send_webhook
from alerts.models import Alert, Channel
from alerts.services import channel_create
from tests.alerts.conftest import SECRET
from tests.alerts.servers import webhook_receiver

pytestmark = pytest.mark.django_db

FORBIDDEN = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://192.168.1.20:8080/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://0.0.0.0/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", FORBIDDEN)
def test_private_addresses_are_refused_as_written(url: str) -> None:
    assert url_problem(url).startswith("refused:")
    with pytest.raises(AddressRefused):
        resolve(url)


@pytest.mark.parametrize("url", ["http://2130706433/", "http://0177.0.0.1/", "http://127.1/", "http://0x7f000001/"])
def test_numeric_spellings_of_loopback_resolve_and_are_refused(url: str) -> None:
    with pytest.raises(AddressRefused, match="a loopback address"):
        resolve(url)


def test_a_real_name_that_resolves_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch, settings) -> None:  # type: ignore[no-untyped-def]
    # "localhost" itself is refused by name; resolved (with the name rule lifted), it is caught by address.
    import alerts.channels.netguard as netguard

    monkeypatch.setattr(netguard, "LOCAL_SUFFIXES", ())
    monkeypatch.setattr(netguard, "url_problem", lambda url: "")
    with pytest.raises(AddressRefused, match="localhost resolves to (127.0.0.1|::1)"):
        resolve("http://localhost:8000/hook")


def test_local_names_are_refused_before_any_lookup() -> None:
    for url in ("http://localhost:8000/hook", "http://redis.internal/", "http://printer.local/"):
        assert "is a local name" in url_problem(url)


def test_a_name_resolving_to_loopback_is_refused() -> None:
    # A real resolution by the system's resolver: the decimal spelling of 127.0.0.1.
    with pytest.raises(AddressRefused, match="resolves to 127.0.0.1, a loopback address"):
        resolve("http://2130706433/hook")


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]], calls: list[str]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host in answers:
            calls.append(host)
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1"])
def test_a_name_that_resolves_to_a_private_address_is_refused(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    _fake_dns(monkeypatch, {"hooks.example.com": [address]}, [])
    with pytest.raises(AddressRefused, match=f"hooks.example.com resolves to {address}"):
        resolve("https://hooks.example.com/x")


def test_one_private_answer_among_public_ones_is_enough_to_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {"mixed.example.com": ["93.184.216.34", "10.1.2.3"]}, [])
    with pytest.raises(AddressRefused, match="10.1.2.3"):
        resolve("https://mixed.example.com/x")


def test_credentials_and_other_schemes_are_refused() -> None:
    assert "credentials" in url_problem("https://user:pw@example.com/")
    assert "https://" in url_problem("ftp://example.com/")
    assert "https://" in url_problem("file:///etc/passwd")
    assert url_problem("https://example.com/hook") == ""


def test_the_api_service_refuses_a_private_url_with_a_field_error(user) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        channel_create(
            owner_id=user.pk, kind="webhook", data={"name": "meta", "url": "http://169.254.169.254/", "secret": SECRET}
        )
    assert "link-local" in caught.value.message_dict["url"][0]


def test_dns_rebinding_connects_to_the_checked_address_only(monkeypatch: pytest.MonkeyPatch, user, settings) -> None:  # type: ignore[no-untyped-def]
    """The name answers a public address when checked and would answer 127.0.0.1 next time: the
    request goes to the checked address (unreachable here), never to the local receiver."""
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 2
    calls: list[str] = []
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "rebind.example.com":
            calls.append(host)
            ip = next(answers)[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with webhook_receiver(SECRET) as receiver:
        hook = Channel.objects.create(
            owner=user,
            kind="webhook",
            name="rebind",
            url=f"http://rebind.example.com:{receiver.port}/hook",
            secret=SECRET,
        )
        alert = Alert.objects.create(owner=user, kind="system", message="x", event="test")
        with pytest.raises(DeliveryError) as caught:
            send_webhook(channel=hook, alert=alert, attempt=1)
        # The public address is unreachable from here (no internet): a transient failure, retried later.
        assert caught.value.transient
        assert calls == ["rebind.example.com"], "resolved once: the connection uses the checked answer"
        assert receiver.requests == []


def test_redirects_are_not_followed(user, receiver) -> None:  # type: ignore[no-untyped-def]
    receiver.statuses = [302]
    receiver.extra_headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    hook = Channel.objects.create(owner=user, kind="webhook", name="redirect", url=receiver.url, secret=SECRET)
    alert = Alert.objects.create(owner=user, kind="system", message="x", event="test")
    with pytest.raises(DeliveryError, match="redirects are not followed") as caught:
        send_webhook(channel=hook, alert=alert, attempt=1)
    assert not caught.value.transient
    assert len(receiver.requests) == 1
