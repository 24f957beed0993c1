"""7. Alerts: how soon a receiver hears of a failed check, and how fast a backlog drains.

Latency: 100 sources on a closed loopback port, one rule (`failures_before_alert: 1`) and a
webhook channel to an HTTP receiver in this process. Each source gets one manual test; its
answer (a failure) is the start, the receiver getting that source's `data_source.down` webhook
the end. Default settings (the dispatcher polls every 0.5 s), SQLite store, one server process.

Backlog: 10,000 pending deliveries written into the running server's SQLite store in one
transaction; from its commit to the receiver holding all 10,000 (each signed, HTTP/1.1, a new
connection per delivery, RIVERGEN_ALERT_CONCURRENCY=32 in flight).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench._harness import BenchError, Report, free_port, ms, percentile, say
from bench._server import running_server

NAME = "alerts"
SOURCES = 100
BACKLOG = 10_000


class _Receiver:
    """A threaded HTTP server noting when each webhook arrived, by event type and source."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.count = 0
        self.last = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.perf_counter()
                payload = json.loads(body)
                with receiver.lock:
                    receiver.count += 1
                    receiver.last = now
                    source = payload.get("data_source") or {}
                    if payload.get("type") == "data_source.down":
                        receiver.arrivals[int(source["id"])] = now
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _stamp(value: datetime) -> str:
    # The SQLite store's form of a UTC timestamp (rivergen.store.base.UTCDateTime).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _backlog(db_path: str, organization_id: int, channel_id: int) -> float:
    """Write BACKLOG events with one pending delivery each; the commit's perf_counter time."""
    now = datetime.now(UTC)
    events, deliveries = [], []
    for _ in range(BACKLOG):
        event_id = "evt_" + uuid.uuid4().hex
        payload = json.dumps({"id": event_id, "type": "test", "organization": {"id": 1}})
        events.append((event_id, organization_id, "test", _stamp(now), payload))
        deliveries.append((organization_id, event_id, channel_id, _stamp(now), _stamp(now)))
    with sqlite3.connect(db_path, timeout=30) as connection:
        connection.executemany(
            "INSERT INTO alert_events (id, organization_id, type, occurred_at, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            events,
        )
        connection.executemany(
            "INSERT INTO notification_deliveries (organization_id, event_id, channel_id, "
            "status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
            deliveries,
        )
    return time.perf_counter()


def run() -> Report:
    """Run both measurements and report their figures."""
    report = Report(NAME)
    receiver = _Receiver()
    try:
        with running_server() as server:
            api = server.api()
            response = api.client.post(
                "/api/v1/notification-channels",
                json={
                    "name": "bench",
                    "type": "webhook",
                    "config": {"url": f"http://127.0.0.1:{receiver.port}/hook"},
                },
            )
            if response.status_code != 201:
                raise BenchError(f"channel: {response.status_code} {response.text}")
            channel = response.json()["data"]
            closed = free_port()
            ids = [
                api.create_source(f"down-{n}", "postgresql", {
                    "host": "127.0.0.1", "port": closed, "database": "postgres",
                    "username": "postgres", "password": "x", "ssl_mode": "disable",
                })
                for n in range(SOURCES)
            ]  # fmt: skip
            response = api.client.post(
                "/api/v1/alert-rules",
                json={"name": "bench", "channel_ids": [channel["id"]], "failures_before_alert": 1},
            )
            if response.status_code != 201:
                raise BenchError(f"rule: {response.status_code} {response.text}")
            answered: dict[int, float] = {}
            for source_id in ids:
                _, data = api.test(source_id, timeout_seconds=2)
                answered[source_id] = time.perf_counter()
                if data["connection_successful"]:
                    raise BenchError("a test of a closed port succeeded")
            _wait(lambda: len(receiver.arrivals) >= SOURCES, 60, "the down webhooks")
            latencies = [receiver.arrivals[s] - answered[s] for s in ids]
            report.add("check answer -> webhook received, p50", ms(percentile(latencies, 50)), "ms")
            report.add("check answer -> webhook received, p99", ms(percentile(latencies, 99)), "ms")

            organization_id = int(channel["organization_id"])
            already = receiver.count
            committed = _backlog(
                str(server.data_dir / "rivergen.db"), organization_id, channel["id"]
            )
            _wait(lambda: receiver.count >= already + BACKLOG, 900, "the backlog")
            seconds = receiver.last - committed
            say(f"  backlog of {BACKLOG} drained in {seconds:.1f} s")
            report.add("deliveries per second from a backlog of 10,000", BACKLOG / seconds, "/s")
            api.close()
    finally:
        receiver.close()
    return report
