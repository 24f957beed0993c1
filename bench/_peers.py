"""The other ends of a benchmark: the raw-driver baselines against the local servers, and a
silent peer that accepts connections and never answers.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from bench._harness import MY_HOST, MY_PORT, PG_HOST, PG_PORT


def silent_connection(engine: str, port: int) -> dict[str, Any]:
    """Settings of `engine` pointing at a silent peer on loopback `port`."""
    if engine == "redis":
        return {"host": "127.0.0.1", "port": port}
    return {"host": "127.0.0.1", "port": port, "username": "bench", "password": "bench-secret"}


# ----- the raw drivers ---------------------------------------------------------------------------


def raw_postgres() -> None:
    """psycopg: connect, SELECT 1, the version query, close."""
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", connect_timeout=10
    ) as conn:
        conn.execute("SELECT 1").fetchone()
        conn.execute("SELECT version()").fetchone()


def raw_postgres_select1() -> None:
    """psycopg: connect, SELECT 1, close."""
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", connect_timeout=10
    ) as conn:
        conn.execute("SELECT 1").fetchone()


def raw_mariadb() -> None:
    """PyMySQL with its defaults: connect, SELECT 1, the version query, close.

    PyMySQL 1.2's default (TLS preferred) builds a TLS context and loads the system CA store
    for every connection, even when the server offers no TLS: ~80 ms on the benchmark machine.
    """
    _raw_mariadb({})


def raw_mariadb_no_tls() -> None:
    """The same with `ssl_disabled=True`: the raw driver at its best against a server without
    TLS (the local MariaDB has none, so the product does no TLS work either)."""
    _raw_mariadb({"ssl_disabled": True})


def _raw_mariadb(tls: dict[str, Any]) -> None:
    import pymysql

    conn = pymysql.connect(
        host=MY_HOST,
        port=MY_PORT,
        user="root",
        password="",
        connect_timeout=10,
        read_timeout=10,
        **tls,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
            cursor.execute("SELECT VERSION()")
            cursor.fetchone()
    finally:
        conn.close()


# ----- a silent peer -----------------------------------------------------------------------------


class SilentPeer:
    """A loopback listener that accepts TCP connections and never sends a byte.

    It stands for a database (or SSH bastion) behind a firewall that lets the handshake through,
    or a server wedged after accept. Accepted sockets are held until `close`.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(512)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-peer", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for conn in self._held:
            conn.close()
        self._held.clear()

    def __enter__(self) -> SilentPeer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
