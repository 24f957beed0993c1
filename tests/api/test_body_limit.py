"""Request bodies over 1 MiB are refused with 413 before anything reads them whole.

Against a real `rivergen serve` over a raw socket, so the body really is 5 MiB on the wire,
with and without Content-Length (chunked). The server's peak resident memory (VmHWM) shows the
body was never held: reading 5 MiB whole (and joining it) would raise the peak by 10 MiB.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.serve import Server, serve

FIVE_MIB = 5 * 1024 * 1024
PIECE = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `rivergen serve` for the module."""
    tmp_path = tmp_path_factory.mktemp("body-limit")
    env = {"RIVERGEN_DATA_DIR": str(tmp_path / "data"), "RIVERGEN_ADMIN_PASSWORD": "pw-1234567890"}
    with serve(tmp_path, "body-limit", **env) as running:
        yield running


def peak_rss_kib(server: Server) -> int:
    """The server process's peak resident set size so far (kB)."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1])


def login_body(size: int) -> bytes:
    """A sign-in body of about `size` bytes (one huge email)."""
    return json.dumps({"email": "a" * size + "@example.com", "password": "x"}).encode()


def post_raw(server: Server, body: bytes, *, chunked: bool) -> tuple[int, dict[str, Any]]:
    """POST `body` to the sign-in route over a raw socket, sending while reading the answer."""
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (
        f"POST /api/v1/auth/login HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    answered = threading.Event()

    def send_body() -> None:
        try:
            for start in range(0, len(body), PIECE):
                if answered.is_set():
                    return  # the server has answered: the rest would never be read
                piece = body[start : start + PIECE]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection after answering

    sock.sendall(head.encode())
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    received = b""
    try:
        while b"\r\n\r\n" not in received or not _complete(received):
            data = sock.recv(65536)
            answered.set()
            if not data:
                break
            received += data
    finally:
        answered.set()
        sender.join(timeout=30)
        sock.close()
    status_line, _, rest = received.partition(b"\r\n")
    _headers, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def _complete(received: bytes) -> bool:
    head, _, payload = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(payload) >= int(line.split(b":", 1)[1])
    return False


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_5_mib_body_is_refused_with_413_without_being_held(server: Server, chunked: bool) -> None:
    # Warm up (the first requests allocate caches), then take the peak as the baseline.
    for _ in range(3):
        assert post_raw(server, login_body(10), chunked=chunked)[0] in (401, 429)
    before = peak_rss_kib(server)
    for _ in range(2):
        status, envelope = post_raw(server, login_body(FIVE_MIB), chunked=chunked)
        assert status == 413, envelope
        assert envelope["success"] is False
        assert envelope["error"] == {
            "code": "PAYLOAD_TOO_LARGE",
            "message": "The request body is larger than the limit of 1 MiB",
            "details": None,
        }
    grown = peak_rss_kib(server) - before
    assert grown < 3 * 1024, f"peak RSS grew by {grown} kB"
    # The server still answers normally afterwards.
    assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200


def test_a_body_just_under_the_limit_still_reaches_the_route(server: Server) -> None:
    body = login_body(1024 * 1024 - 200)
    assert len(body) <= 1024 * 1024
    for chunked in (False, True):
        status, envelope = post_raw(server, body, chunked=chunked)
        # The route saw it: a validation error on the email, not 413.
        assert status == 422, envelope
        assert envelope["error"]["code"] == "VALIDATION_ERROR"
