"""What the control API answers to a mistake in a test: a misspelt field or route id is refused
with a 400 that names it, instead of being ignored (a test of a bad transaction would then make
a good one, and an assertion that a route was never called would hold whatever happened)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_pi_payments.testing import SandboxControlError, SandboxHandle


def _approved(sb: SandboxHandle, server: Any) -> str:
    identifier = str(sb.create_payment(sb.create_user()["uid"], 2)["identifier"])
    with server.state.lock:
        server.state.payments[identifier].developer_approved = True
    return identifier


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        ("/sandbox/users", {"name": "ada"}, "name"),
        ("/sandbox/tokens", {"uid": "UID", "ttl": 5}, "ttl"),
        ("/sandbox/tokens/expire", {"token": "x"}, "token"),
        ("/sandbox/tokens/revoke", {"token": "x"}, "token"),
        ("/sandbox/payments", {"uid": "UID", "amount": 1, "memo": "m", "metdata": {}}, "metdata"),
        ("/sandbox/accounts", {"balanse": 5}, "balanse"),
        ("/sandbox/reset", {"confg": True}, "confg"),
    ],
)
def test_unknown_fields_are_refused_and_named(
    sb: SandboxHandle, path: str, body: dict[str, Any], unknown: str
) -> None:
    user = sb.create_user()
    with pytest.raises(SandboxControlError) as refused:
        sb.request("POST", path, {**body, **({"uid": user["uid"]} if "uid" in body else {})})
    assert refused.value.status == 400
    assert refused.value.body["error"] == "invalid_arguments"
    assert repr(unknown) in refused.value.body["error_message"]
    assert sb.request("GET", "/sandbox/users") == [user]  # nothing created or changed
    assert sb.payments() == []


def test_a_misspelt_transaction_override_makes_no_transaction(
    sb: SandboxHandle, server: Any
) -> None:
    identifier = _approved(sb, server)
    with pytest.raises(SandboxControlError) as refused:
        sb.submit_transaction(identifier, ammount="1")
    assert refused.value.status == 400
    message = refused.value.body["error_message"]
    assert "'ammount'" in message and "'amount'" in message  # names the typo and the fields
    assert sb.ledger() == []
    assert sb.payment(identifier)["transaction"] is None
    assert (
        sb.submit_transaction(identifier, amount="1")["payment"]["transaction"]["verified"] is False
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda sb: sb.login(name="ada"),
        lambda sb: sb.create_user(wallet="G"),
    ],
)
def test_the_handle_passes_the_refusal_on(
    sb: SandboxHandle, make: Callable[[SandboxHandle], Any]
) -> None:
    with pytest.raises(SandboxControlError, match="unknown fields"):
        make(sb)
    assert sb.request("GET", "/sandbox/users") == []


def test_calls_of_an_unknown_route_id_are_refused(sb: SandboxHandle) -> None:
    with pytest.raises(SandboxControlError) as refused:
        sb.calls("aprove")
    assert refused.value.status == 400
    assert "'approve'" in refused.value.body["error_message"]
    assert sb.calls("approve") == []


def test_a_non_decimal_amount_string_is_named(sb: SandboxHandle) -> None:
    uid = sb.create_user()["uid"]
    with pytest.raises(ValueError, match="'3,14' is not a decimal amount"):
        sb.create_payment(uid, "3,14")
    assert sb.payments() == []


class _NotASandbox(http.server.BaseHTTPRequestHandler):
    """A web site's answers: HTML, whatever the path."""

    def _html(self) -> None:
        status = 200 if self.path == "/sandbox/users" else 404
        body = b"<!doctype html><h1>My shop</h1>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _html

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def not_a_sandbox() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotASandbox)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("call", "status"), [("create_user", 200), ("payments", 404)])
def test_a_handle_on_something_else_than_a_sandbox_says_so(
    not_a_sandbox: str, call: str, status: int
) -> None:
    handle = SandboxHandle(not_a_sandbox, "sandbox-api-key", "Pi Testnet")
    with pytest.raises(SandboxControlError) as refused:
        getattr(handle, call)()
    assert refused.value.status == status
    assert refused.value.body == "<!doctype html><h1>My shop</h1>"
    assert f"{not_a_sandbox} answered HTTP {status} without JSON" in str(refused.value)
    assert "is it a Pi sandbox?" in str(refused.value)
