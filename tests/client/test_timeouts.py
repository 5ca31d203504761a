"""TIMEOUT bounds each attempt of a call as a whole: connecting and waiting for the answer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

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
