"""The address guard for member-supplied webhook URLs: an SSRF table of refused spellings,
the test-only loopback switch, and registration through the API."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from django.conf import settings
from django.test import override_settings

from members import alerting
from members.netguard import AddressRefused, check_url, refusal_reason

# Loopback in every spelling: refused in production, reachable only with the test switch.
LOOPBACK = [
    "https://127.0.0.1/",
    "https://127.1/",
    "https://127.0.0.2/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0x7f.0.0.1/",
    "https://0177.0.0.1/",
    "https://017700000001/",
    "https://localhost/",
    "https://LocalHost./",
    "https://127。0。0。1/",
    "https://[::1]/",
    "https://[0:0:0:0:0:0:0:1]/",
    "https://127.0.0.1#@8.8.8.8/",
]
# Refused whatever the settings.
ALWAYS_REFUSED = [
    # IPv4 addresses dressed as IPv6: mapped, compatible, NAT64, 6to4, Teredo
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::127.0.0.1]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b::a00:1]/",
    "https://[64:ff9b:1::a00:1]/",
    "https://[2002:7f00:1::]/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    # private, carrier-grade NAT, link-local, metadata
    "https://10.0.0.1/",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://100.100.100.200/",
    "https://169.254.169.254/",
    "https://0xa9fea9fe/",
    "https://2852039166/",
    "https://168.63.129.16/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://[fd00:ec2::254]/",
    # unspecified, broadcast, multicast, reserved, documentation
    "https://0.0.0.0/",
    "https://0/",
    "https://[::]/",
    "https://255.255.255.255/",
    "https://224.0.0.1/",
    "https://239.255.255.250/",
    "https://[ff02::1]/",
    "https://240.0.0.1/",
    "https://192.0.2.10/",
    "https://[2001:db8::1]/",
    # credentials in the URL
    "https://8.8.8.8@127.0.0.1/",
    "https://user:pass@8.8.8.8/",
    # not https, or not a URL at all
    "http://8.8.8.8/",
    "ftp://8.8.8.8/",
    "file:///etc/passwd",
    "gopher://8.8.8.8/",
    "https:///path",
    "https://8.8.8.8:99999/",
    "https://exa mple.org/",
    "https://a\r\nb/",
    "",
]
REFUSED = LOOPBACK + ALWAYS_REFUSED


@pytest.mark.parametrize("url", REFUSED)
def test_refused_urls(url):
    with pytest.raises(AddressRefused):
        check_url(url)


@pytest.mark.parametrize("url", LOOPBACK)
def test_the_test_switch_lets_plain_loopback_through(url):
    assert check_url(url, allow_loopback=True).addresses


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_the_test_switch_lets_nothing_else_through(url):
    with pytest.raises(AddressRefused):
        check_url(url, allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/",
        "https://[2001:4860:4860::8888]/",
        "https://[64:ff9b::808:808]/",
        "https://[::ffff:8.8.8.8]/",
        "https://1.1.1.1:8443/hook?x=1",
    ],
)
def test_public_addresses_are_accepted(url):
    target = check_url(url)
    assert target.addresses
    assert all(refusal_reason(ipaddress.ip_address(a)) is None for a in target.addresses)


def test_every_resolved_address_is_judged_not_just_the_first():
    def two_answers(host, port, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    with pytest.raises(AddressRefused, match="private"):
        check_url("https://rebind.example/", resolver=two_answers)


def test_the_connection_target_is_the_checked_address_and_the_host_header_the_name():
    target = check_url("https://localhost:8443/x?y=1", allow_loopback=True)
    assert set(target.addresses) <= {"127.0.0.1", "::1"}
    assert target.host_header == "localhost:8443"
    assert target.path == "/x?y=1"


def test_refusals_do_not_echo_the_address():
    with pytest.raises(AddressRefused) as info:
        check_url("https://10.9.8.7/")
    assert "10.9.8.7" not in info.value.detail


def test_production_settings_refuse_loopback():
    """The deployed defaults: no loopback, no plain http. The integration tests turn both on
    only for their own receiver."""
    assert settings.PHALANX_WEBHOOK_ALLOW_LOOPBACK is False
    assert settings.PHALANX_WEBHOOK_ALLOW_HTTP is False
    for url in (
        "https://127.0.0.1:8443/hook",
        "http://127.0.0.1:8080/hook",
        "https://localhost/hook",
    ):
        with pytest.raises(AddressRefused):
            alerting.check_webhook_url(url)
    with override_settings(PHALANX_WEBHOOK_ALLOW_LOOPBACK=True, PHALANX_WEBHOOK_ALLOW_HTTP=True):
        assert alerting.check_webhook_url("http://127.0.0.1:8080/hook").addresses == ("127.0.0.1",)
        with pytest.raises(AddressRefused):
            alerting.check_webhook_url("http://10.0.0.1/hook")


@pytest.mark.django_db
@pytest.mark.parametrize("url", REFUSED[::3])
def test_registration_through_the_api_refuses_with_a_clear_error(member_client, url):
    client = member_client("Alice")
    response = client.api.post("/api/v1/webhooks/", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] in {
        "blocked_address",
        "https_required",
        "bad_url",
        "unresolvable",
        "invalid",
    }
    assert client.api.get("/api/v1/webhooks/").json() == []
