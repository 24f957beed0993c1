"""Shared connector pieces: query guards, value rendering, deadline alarms."""

from __future__ import annotations

import datetime as dt
import decimal
import socket
import threading
import time

import pytest

from rivergen.connectors._alarms import SocketWatchdog, alarm_at
from rivergen.connectors._support import cell_text, clean_query, first_keyword, refuse_unless_read
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, ProbeFailure


@pytest.mark.parametrize(
    ("query", "keyword"),
    [
        ("select 1", "SELECT"),
        ("  -- note\n /* block */ (WITH x AS (SELECT 1) SELECT * FROM x)", "WITH"),
        ("# mysql comment\nSHOW TABLES", ""),
        ("", ""),
    ],
)
def test_first_keyword(query: str, keyword: str) -> None:
    assert first_keyword(query) == keyword


def test_hash_comments_only_where_the_engine_has_them() -> None:
    assert first_keyword("# c\nDROP TABLE t", hash_comments=True) == "DROP"


def test_refuse_unless_read() -> None:
    refuse_unless_read("EXPLAIN SELECT 1")
    with pytest.raises(ProbeFailure) as info:
        refuse_unless_read("/* SELECT */ DELETE FROM t")
    assert info.value.code is ErrorCode.QUERY_ERROR


def test_clean_query() -> None:
    assert clean_query("  SELECT 2 ;; ", "SELECT 1") == "SELECT 2"
    assert clean_query(None, "SELECT 1") == "SELECT 1"
    assert clean_query(" ; ", "PING") == "PING"


def test_cell_text() -> None:
    assert cell_text(None) is None
    assert cell_text(b"caf\xc3\xa9") == "café"
    assert cell_text(b"\x00\xff") == "\\x00ff"
    assert cell_text(True) == "true"
    assert cell_text(decimal.Decimal("1.50")) == "1.50"
    assert cell_text(dt.date(2024, 1, 2)) == "2024-01-02"
    assert cell_text(42) == "42"


def test_alarm_runs_once_at_the_deadline_and_never_after_cancel() -> None:
    fired = threading.Event()
    started = time.monotonic()
    alarm = alarm_at(Deadline.after(0.2), fired.set)
    assert fired.wait(2)
    assert 0.15 < time.monotonic() - started < 1.0
    assert alarm.fired
    cancelled = threading.Event()
    alarm_at(Deadline.after(0.1), cancelled.set).cancel()
    time.sleep(0.3)
    assert not cancelled.is_set()


def test_watchdog_unblocks_a_blocked_read() -> None:
    left, right = socket.socketpair()
    try:
        started = time.monotonic()
        with SocketWatchdog(Deadline.after(0.3)) as watchdog:
            watchdog.watch(left.fileno())
            assert left.recv(1) == b""  # shut down under us instead of blocking forever
            assert watchdog.fired
        assert time.monotonic() - started < 1.5
    finally:
        left.close()
        right.close()
