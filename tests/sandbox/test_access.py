"""Web pages a developer visits cannot drive the sandbox (CORS, form posts, DNS rebinding)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from django_pi_payments.sandbox import SandboxServer
from django_pi_payments.sandbox.access import AccessPolicy, normalize_origin
from django_pi_payments.sandbox.cli import build_parser, main
from django_pi_payments.testing import SandboxHandle

from .conftest import Api, error_of

EVIL = "https://evil.example"


def _raw(url: str, request: bytes) -> bytes:
    """Send ``request`` as is and return the whole answer (the sandbox closes after it)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_form_posted_by_another_site_changes_nothing(api: Api, sb: SandboxHandle) -> None:
    user, _ = sb.login(username="ada")
    # What <form enctype="text/plain" method="post" action=".../sandbox/reset"> sends.
    response = api.post(
        "/sandbox/reset",
        data=b'{"config": true, "x": "="}',
        auth=None,
        headers={"Origin": EVIL, "Content-Type": "text/plain"},
    )

    assert (response.status_code, error_of(response)) == (403, "forbidden_origin")
    assert "--allow-origin https://evil.example" in response.json()["error_message"]
    assert "Access-Control-Allow-Origin" not in response.headers
    assert [found["uid"] for found in sb.request("GET", "/sandbox/users")] == [user["uid"]]


def test_another_sites_script_cannot_create_users_or_read(api: Api, sb: SandboxHandle) -> None:
    for origin in (EVIL, "null", "http://192.168.1.20:8000", "http://127.0.0.1.evil.example"):
        headers = {"Origin": origin, "Content-Type": "text/plain"}
        created = api.post("/sandbox/users", data=b"{}", auth=None, headers=headers)
        listed = api.get("/sandbox/users", auth=None, headers={"Origin": origin})
        for response in (created, listed):
            assert (response.status_code, error_of(response)) == (403, "forbidden_origin"), origin
    assert sb.request("GET", "/sandbox/users") == []


def test_another_sites_preflight_is_refused(api: Api) -> None:
    response = api.call(
        "OPTIONS",
        "/sandbox/payments",
        auth=None,
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_the_platform_api_refuses_other_sites_too(api: Api, sb: SandboxHandle) -> None:
    user, _ = sb.login()
    identifier = sb.create_payment(user["uid"], 1)["identifier"]
    response = api.post(f"/v2/payments/{identifier}/approve", headers={"Origin": EVIL})
    assert (response.status_code, error_of(response)) == (403, "forbidden_origin")
    assert sb.payment(identifier)["status"]["developer_approved"] is False


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8000",
        "http://localhost:3000",
        "http://[::1]:8000",
        "http://shop.localhost:8000",
        "https://127.0.0.2",
        "HTTP://LOCALHOST:8000",
    ],
)
def test_pages_on_loopback_are_answered_with_their_origin(api: Api, origin: str) -> None:
    response = api.post("/sandbox/users", json={"username": "ada"}, headers={"Origin": origin})
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io", "", "a b", "x:notaport"]
)
def test_a_rebound_host_name_is_refused(api: Api, sb: SandboxHandle, host: str) -> None:
    user, _ = sb.login()
    identifier = sb.create_payment(user["uid"], 1)["identifier"]
    for path, auth in ((f"/v2/payments/{identifier}/approve", f"Key {sb.api_key}"),):
        response = api.post(path, auth=auth, headers={"Host": host})
        assert (response.status_code, error_of(response)) == (403, "forbidden_host")
    response = api.post("/sandbox/reset", auth=None, headers={"Host": host})
    assert (response.status_code, error_of(response)) == (403, "forbidden_host")
    assert sb.payment(identifier)["status"]["developer_approved"] is False


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8765", "localhost", "LOCALHOST:1", "[::1]:8765", "192.168.1.20:8765"]
)
def test_ip_addresses_and_localhost_are_answered(api: Api, host: str) -> None:
    response = api.get("/sandbox/config", auth=None, headers={"Host": host})
    assert response.status_code == 200, response.text


def test_a_proxy_request_keeps_its_host(server: SandboxServer, sb: SandboxHandle) -> None:
    account = sb.request("GET", "/sandbox/config")["app_wallet_address"]
    request = (
        f"GET https://api.testnet.minepi.com/accounts/{account} HTTP/1.1\r\n"
        "Host: api.testnet.minepi.com\r\nConnection: close\r\n\r\n"
    )
    answer = _raw(server.url, request.encode())
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


@pytest.fixture
def configured() -> Iterator[SandboxServer]:
    with SandboxServer(
        allowed_origins=["https://Shop.example:8443/", "null"], allowed_hosts=["Sandbox"]
    ) as running:
        yield running


def test_the_operator_allows_origins_and_hosts(configured: SandboxServer) -> None:
    url = f"{configured.url}/sandbox/users"
    for origin in ("https://shop.example:8443", "null"):
        response = requests.get(url, headers={"Origin": origin}, timeout=5)
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
    assert requests.get(url, headers={"Origin": EVIL}, timeout=5).status_code == 403
    assert requests.get(url, headers={"Host": "sandbox:8765"}, timeout=5).status_code == 200
    assert requests.get(url, headers={"Host": "other:8765"}, timeout=5).status_code == 403


def test_a_star_allows_any_origin_and_host() -> None:
    policy = AccessPolicy(["*"], ["*"])
    assert policy.origin_allowed(EVIL)
    assert policy.host_allowed("evil.example")


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("http://192.168.1.20:8000/", "http://192.168.1.20:8000"),
        ("HTTPS://Shop.Example", "https://shop.example"),
        ("http://[::1]:80", "http://[::1]:80"),
        ("*", "*"),
        ("null", "null"),
    ],
)
def test_normalize_origin(text: str, origin: str) -> None:
    assert normalize_origin(text) == origin


@pytest.mark.parametrize(
    "text", ["shop.example", "ftp://shop.example", "http://shop.example/path", "http://x:99999"]
)
def test_malformed_origins_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        normalize_origin(text)
    with pytest.raises(ValueError, match="origin"):
        SandboxServer(allowed_origins=[text])


def test_command_line_options(capsys: pytest.CaptureFixture[str]) -> None:
    origins = ["--allow-origin", "http://192.168.1.20:8000/", "--allow-origin", "null"]
    options = build_parser().parse_args([*origins, "--allow-host", "sandbox"])
    assert options.allow_origin == ["http://192.168.1.20:8000", "null"]
    assert options.allow_host == ["sandbox"]
    assert build_parser().parse_args([]).allow_origin == []

    with pytest.raises(SystemExit) as exited:
        main(["--port", "0", "--allow-origin", "shop.example"])
    assert exited.value.code == 2
    assert "--allow-origin" in capsys.readouterr().err
