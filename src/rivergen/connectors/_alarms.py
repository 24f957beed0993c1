"""Actions run when a deadline passes: cutting a socket, interrupting a query.

One daemon thread serves every test in the process: starting a thread per test would cost more
than a whole loopback connection test does.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

from rivergen.core.deadline import Deadline


class Alarm:
    """One scheduled action; `cancel` guarantees it does not start afterwards."""

    def __init__(self, action: Callable[[], object]) -> None:
        self._action = action
        self._lock = threading.Lock()
        self._done = False
        self.fired = False

    def fire(self) -> None:
        """Run the action unless cancelled; a failing action is ignored (its work is ending)."""
        with self._lock:
            if self._done:
                return
            self._done = True
            self.fired = True
            with contextlib.suppress(Exception):
                self._action()

    def cancel(self) -> None:
        """Make sure the action does not run from now on (waits for a running one)."""
        with self._lock:
            self._done = True


class _AlarmClock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, at: float, alarm: Alarm) -> None:
        with self._cond:
            heapq.heappush(self._heap, (at, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="rivergen-connector-alarms", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, _, alarm = self._heap[0]
                delay = at - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            alarm.fire()


_CLOCK = _AlarmClock()


def alarm_at(deadline: Deadline, action: Callable[[], object], grace: float = 0.0) -> Alarm:
    """Run `action` once `grace` seconds after the deadline, unless cancelled before."""
    alarm = Alarm(action)
    _CLOCK.schedule(deadline.expires_at + grace, alarm)
    return alarm


class SocketWatchdog:
    """Shuts sockets down once the deadline has passed, so a blocked read returns at once.

    Native read timeouts apply per read; a peer that trickles bytes could outlast them. The
    watchdog holds duplicate descriptors, so it can never touch a descriptor number that the
    driver closed and the process reused for something else.
    """

    GRACE_SECONDS = 0.1

    def __init__(self, deadline: Deadline) -> None:
        self._socks: list[socket.socket] = []
        self._alarm = alarm_at(deadline, self._cut, self.GRACE_SECONDS)

    @property
    def fired(self) -> bool:
        """Whether the deadline passed while a socket was being watched."""
        return self._alarm.fired

    def watch(self, fd: int) -> None:
        """Watch the socket behind descriptor `fd` (duplicated here)."""
        self._socks.append(socket.socket(fileno=socket.dup(fd)))

    def _cut(self) -> None:
        for sock in list(self._socks):
            # Already disconnected means nothing is left to unblock.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> SocketWatchdog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._alarm.cancel()  # after this, _cut cannot run: the duplicates may be closed
        for sock in self._socks:
            sock.close()
        self._socks.clear()


# Linux's struct tcp_info: tcpi_bytes_received (u64) at this offset (kernel 4.1+).
_TCP_INFO_SIZE = 256
_BYTES_RECEIVED_AT = 128


def bytes_received(sock: socket.socket) -> int | None:
    """What the kernel has received on `sock` so far; None where TCP_INFO cannot tell."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, AttributeError):
        return None
    if len(info) < _BYTES_RECEIVED_AT + 8:
        return None
    value: int = struct.unpack_from("<Q", info, _BYTES_RECEIVED_AT)[0]
    return value


class ReceiveLimit:
    """Shuts a socket down once more than `limit` bytes have arrived on it from now on.

    For drivers that read a message whole whatever its announced length (libpq): the alarm
    thread polls the kernel's count every POLL_SECONDS, so what the driver can have buffered is
    `limit` plus what arrives in one interval. Without TCP_INFO (not Linux) nothing is limited.
    """

    POLL_SECONDS = 0.005

    def __init__(self, fd: int, limit: int) -> None:
        self._sock = socket.socket(fileno=socket.dup(fd))
        self._lock = threading.Lock()
        self._stopped = False
        self.exceeded = False
        start = bytes_received(self._sock)
        self._until = None if start is None else start + limit
        if self._until is not None:
            self._schedule()

    def _schedule(self) -> None:
        _CLOCK.schedule(time.monotonic() + self.POLL_SECONDS, Alarm(self._check))

    def _check(self) -> None:
        with self._lock:
            if self._stopped or self._until is None:
                return
            received = bytes_received(self._sock)
            if received is not None and received <= self._until:
                self._schedule()
                return
            self.exceeded = received is not None
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> ReceiveLimit:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:  # a poll running now finishes first; later ones see _stopped
            self._stopped = True
            self._sock.close()
