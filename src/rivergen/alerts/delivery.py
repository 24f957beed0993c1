"""Sending one notification to one channel: signed webhook, Slack incoming webhook, email.

Every destination is resolved and judged by the host policy first, and the connection goes to
the address that was checked (the URL's host is replaced by that address; the Host header and
the TLS server name stay the original host's), so a name that resolves differently a moment
later cannot steer a delivery elsewhere. No redirect is followed, no proxy from the environment
is used, the answer is read up to a size cap, and connect and read each have a timeout.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from rivergen.alerts import signing
from rivergen.alerts.payload import slack_body, subject_line, text_line
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ProbeFailure
from rivergen.security.host_policy import HostPolicy, ResolvedHost


@dataclass(frozen=True)
class Attempt:
    """What one attempt gave: sent or not, the HTTP status, a message holding no secret."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    # Retrying cannot help (the policy refused the destination, the configuration is invalid).
    permanent: bool = False


class _Refused(Exception):
    """A destination the policy or the configuration rules out; the message holds no secret."""


@dataclass
class Sender:
    """Delivers payloads under the host policy with bounded time and memory."""

    policy: HostPolicy
    timeout_seconds: float = 10.0
    max_response_bytes: int = 64 * 1024
    _client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # One client (building one loads the CA bundle: ~10 ms each) that never keeps a
        # connection: a pooled connection is keyed by address, so it could carry a request for
        # another host name at the same address over TLS verified for the first one.
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_seconds),
                follow_redirects=False,
                trust_env=False,
                verify=ssl.create_default_context(),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(
        self,
        channel_type: str,
        config: dict[str, Any],
        secrets: dict[str, Any],
        event_id: str,
        payload: dict[str, Any],
    ) -> Attempt:
        """One attempt to deliver `payload` (event `event_id`) to a channel."""
        try:
            if channel_type == "webhook":
                body = json.dumps(payload, separators=(",", ":")).encode()
                stamp = int(time.time())
                headers = signing.headers(secrets["secret"], event_id, stamp, body)
                return await self._post(config["url"], body, headers)
            if channel_type == "slack":
                body = json.dumps(slack_body(payload)).encode()
                return await self._post(secrets["url"], body, {})
            if channel_type == "email":
                return await self._mail(config, secrets.get("password"), payload)
            raise _Refused(f"Unknown channel type {channel_type!r}")
        except ProbeFailure as failure:
            return Attempt(False, error=failure.message, permanent=True)
        except _Refused as refused:
            return Attempt(False, error=str(refused), permanent=True)

    async def _resolve(self, host: str, port: int, deadline: Deadline) -> ResolvedHost:
        return await self.policy.resolve_and_check(host, port, deadline)

    async def _post(self, url: str, body: bytes, extra: dict[str, str]) -> Attempt:
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            raise _Refused("The URL is not valid") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise _Refused("The URL must be http:// or https:// with a host")
        port = target.port or (443 if target.scheme == "https" else 80)
        deadline = Deadline.after(self.timeout_seconds)
        resolved = await self._resolve(target.host, port, deadline)
        pinned = target.copy_with(host=resolved.address)
        headers = {
            "Host": target.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": "rivergen-alerts",
            **extra,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            # The whole attempt is bounded too: a receiver dripping its answer byte by byte
            # would otherwise renew the read timeout forever.
            async with (
                asyncio.timeout(2 * self.timeout_seconds),
                self._http().stream(
                    "POST", pinned, content=body, headers=headers, extensions=extensions
                ) as response,
            ):
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= self.max_response_bytes:
                        break
                status = response.status_code
        except (httpx.ConnectTimeout, httpx.PoolTimeout):
            return Attempt(False, error="The connection timed out")
        except (httpx.ReadTimeout, httpx.WriteTimeout, TimeoutError):
            return Attempt(False, error=f"No answer within {self.timeout_seconds:g} s")
        except httpx.ConnectError:
            return Attempt(False, error="The connection was refused or failed")
        except httpx.HTTPError as exc:
            # The type only: httpx messages may quote the URL, and a Slack URL is a secret.
            return Attempt(False, error=f"HTTP error ({type(exc).__name__})")
        if 200 <= status < 300:
            return Attempt(True, status)
        if 300 <= status < 400:
            return Attempt(False, status, "The receiver redirected; redirects are not followed")
        return Attempt(False, status, f"The receiver answered HTTP {status}")

    async def _mail(
        self, config: dict[str, Any], password: str | None, payload: dict[str, Any]
    ) -> Attempt:
        host, port, security = str(config["host"]), int(config["port"]), config["security"]
        deadline = Deadline.after(self.timeout_seconds)
        resolved = await self._resolve(host, port, deadline)
        message = EmailMessage()
        message["From"] = config["from"]
        message["To"] = ", ".join(config["to"])
        message["Subject"] = subject_line(payload)
        message["Message-ID"] = f"<{payload['id']}@rivergen>"
        message.set_content(text_line(payload) + "\n\n" + json.dumps(payload, indent=2))
        try:
            sock = await _connect(resolved, deadline)
        except TimeoutError:
            return Attempt(False, error="The connection timed out")
        except OSError as exc:
            return Attempt(False, error=f"The connection failed ({exc.strerror or 'error'})")
        smtp = aiosmtplib.SMTP(
            hostname=host,
            sock=sock,
            timeout=self.timeout_seconds,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            tls_context=ssl.create_default_context(),
            username=config.get("username") or None,
            password=password if config.get("username") else None,
        )
        try:
            async with asyncio.timeout(2 * self.timeout_seconds):
                await smtp.connect()
                try:
                    await smtp.send_message(message)
                finally:
                    await _quit(smtp)
        except aiosmtplib.SMTPAuthenticationError:
            return Attempt(False, error="The SMTP server refused the username and password")
        except aiosmtplib.SMTPResponseException as exc:
            return Attempt(False, exc.code, f"The SMTP server answered {exc.code}")
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            return Attempt(False, error=f"No answer within {self.timeout_seconds:g} s")
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return Attempt(False, error=f"SMTP error ({type(exc).__name__})")
        finally:
            sock.close()
        return Attempt(True)


async def _connect(resolved: ResolvedHost, deadline: Deadline) -> socket.socket:
    """A TCP connection to the checked address itself (not to a name resolved again)."""
    sock = socket.socket(resolved.family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(deadline.remaining()):
            await asyncio.get_running_loop().sock_connect(sock, (resolved.address, resolved.port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
