"""TIMEOUT bounds each attempt of a call as a whole: connecting and waiting for the answer."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import types
from collections.abc import Callable, Iterator

import pytest

from django_pi_payments import http
from django_pi_payments.exceptions import PiUnavailable
from django_pi_payments.http import Transport

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@pytest.fixture
def slow_server() -> Iterator[str]:
    """A server slow to take a connection (about 1 s: its accept queue is full, so the first
    SYN is dropped and sent again), then 0.8 s slow to answer."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    filler = socket.create_connection(server.getsockname())  # fills the accept queue
    stop = threading.Event()

    def serve() -> None:
        time.sleep(0.3)
        first, _ = server.accept()  # the filler: the next SYN sent again gets in
        server.settimeout(5)
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with first, connection:
            connection.recv(65536)
            if not stop.wait(0.8):
                connection.sendall(ANSWER)
                stop.wait(2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield url
    stop.set()
    thread.join(5)
    filler.close()
    server.close()


def test_connecting_and_answering_slowly_together_exceed_the_timeout(slow_server):
    transport = Transport(slow_server, timeout=1.5, max_retries=0)
    started = time.monotonic()
    with pytest.raises(PiUnavailable, match="timed out"):
        transport.request("GET", "/")
    assert time.monotonic() - started < 1.7
    transport.close()


Script = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """``serve(*scripts)``: a server answering its n-th connection with the n-th script, once it
    has read the request; returns its URL."""
    servers: list[tuple[socket.socket, threading.Thread]] = []

    def start(*scripts: Script) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(5)

        def run() -> None:
            for script in scripts:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                with connection:
                    connection.recv(65536)
                    with contextlib.suppress(OSError):  # the client hung up first
                        script(connection)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.close()
        thread.join(10)


def _headers(length: int) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _trickle(connection: socket.socket) -> None:
    """The headers at once, then the body a byte every 0.2 s: 4 s in all."""
    body = b'{"x": "0123456789"} '
    connection.sendall(_headers(len(body)))
    for byte in body:
        time.sleep(0.2)
        connection.sendall(bytes([byte]))


def _answer(connection: socket.socket) -> None:
    connection.sendall(ANSWER)
    time.sleep(0.5)


def test_an_answer_trickling_in_past_the_timeout_is_cut_off(serve):
    transport = Transport(serve(_trickle, _answer), timeout=1, max_retries=0)
    started = time.monotonic()
    with pytest.raises(PiUnavailable, match="timed out"):
        transport.request("POST", "/", json={})
    assert time.monotonic() - started < 1.3
    # The half-read connection was closed, not reused: the next call gets a new one.
    assert transport.request("GET", "/").data == {}
    transport.close()


def test_a_get_trickling_in_is_retried_on_a_new_connection(serve):
    transport = Transport(serve(_trickle, _answer), timeout=1, max_retries=1, backoff=0.01)
    assert transport.request("GET", "/").data == {}
    transport.close()


def test_an_answer_declared_larger_than_the_limit_is_refused_unread(serve, monkeypatch):
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 1000)

    def declare_large(connection: socket.socket) -> None:
        connection.sendall(_headers(1001))  # and never the body

    transport = Transport(serve(declare_large, _answer), timeout=2, max_retries=0)
    started = time.monotonic()
    with pytest.raises(PiUnavailable, match="GET / answered more than"):
        transport.request("GET", "/")
    assert time.monotonic() - started < 1
    assert transport.request("GET", "/").data == {}
    transport.close()


def test_an_answer_growing_past_the_limit_is_refused(serve, monkeypatch):
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 100_000)

    def stream(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(20):
            connection.sendall(b"2000\r\n" + b" " * 0x2000 + b"\r\n")
        connection.sendall(b"0\r\n\r\n")

    transport = Transport(serve(stream), timeout=2, max_retries=0)
    with pytest.raises(PiUnavailable, match="answered more than"):
        transport.request("GET", "/")
    transport.close()


def test_an_answer_within_the_limit_is_read_whole(serve, monkeypatch):
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 1_000_000)
    items = list(range(100_000))
    body = json.dumps(items).encode()

    def large(connection: socket.socket) -> None:
        connection.sendall(_headers(len(body)) + body)

    transport = Transport(serve(large), timeout=2, max_retries=0)
    assert transport.request("GET", "/").data == items
    transport.close()


def test_the_wait_before_a_retry_stops_growing(serve, monkeypatch):
    """Ten retries of a GET answered 503 wait at most twice MAX_BACKOFF each (jitter included),
    not up to 0.2 s * 2**9."""
    waits: list[float] = []
    clock = types.SimpleNamespace(sleep=waits.append, monotonic=time.monotonic)
    monkeypatch.setattr(http, "time", clock)

    def unavailable(connection: socket.socket) -> None:
        connection.sendall(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )

    transport = Transport(serve(*[unavailable] * 11), timeout=2, max_retries=10, backoff=0.2)
    assert transport.request("GET", "/").status == 503  # the last attempt's answer
    transport.close()
    assert len(waits) == 10
    assert waits[0] < 0.4
    assert all(wait <= 2 * http.MAX_BACKOFF for wait in waits)
    assert max(waits) >= http.MAX_BACKOFF
