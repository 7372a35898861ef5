"""A real SMTP server (aiosmtpd) that captures every message and answers 4xx/5xx on request.

Used by the tests as the relay or MX, and by `make run` as the embedded mail catcher (with a
directory to store each message as a .eml file).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    received_at: float = field(default_factory=time.time)
    peer: tuple[str, int] | None = None  # the client's address and port: one per SMTP connection

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Failure:
    code: int
    text: str
    remaining: int | None  # None = for as long as the rule stands


class CaptureHandler:
    def __init__(self, store_dir: Path | None = None) -> None:
        self.messages: list[Captured] = []
        self.store_dir = store_dir
        self._per_rcpt: dict[str, _Failure] = {}
        self._next: dict[str, list[_Failure]] = {"MAIL": [], "RCPT": [], "DATA": []}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.commands: Counter[str] = Counter()
        # Advertised like real MTAs do, so clients send ahead (RFC 2920); aiosmtpd reads pipelined input in order.
        self.pipelining = True

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    # --- rules -----------------------------------------------------------------------------------
    def fail_recipient(self, address: str, code: int, text: str, times: int | None = None) -> None:
        """Answer `code text` to RCPT TO for this address (`times` times, or until cleared)."""
        with self._lock:
            self._per_rcpt[address.lower()] = _Failure(code, text, times)

    def clear_recipient(self, address: str) -> None:
        """Drop the rule for this address (other rules stand)."""
        with self._lock:
            self._per_rcpt.pop(address.lower(), None)

    def fail_next(self, command: str, code: int, text: str, times: int = 1) -> None:
        """Answer `code text` to the next `times` MAIL, RCPT or DATA commands, whoever sends them."""
        with self._lock:
            self._next[command.upper()].append(_Failure(code, text, times))

    def clear_rules(self) -> None:
        with self._lock:
            self._per_rcpt.clear()
            for rules in self._next.values():
                rules.clear()

    def _take_next(self, command: str) -> str | None:
        with self._lock:
            self.commands[command] += 1
            rules = self._next[command]
            while rules:
                rule = rules[0]
                assert rule.remaining is not None
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.pop(0)
                return f"{rule.code} {rule.text}"
        return None

    # --- aiosmtpd hooks --------------------------------------------------------------------------
    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self._take_next("MAIL")
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self._take_next("RCPT")
        if answer:
            return answer
        with self._lock:
            rule = self._per_rcpt.get(address.lower())
            if rule is not None:
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del self._per_rcpt[address.lower()]
                return f"{rule.code} {rule.text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        answer = self._take_next("DATA")
        if answer:
            return answer
        data = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not data:
            data = envelope.content
        peer = tuple(session.peer[:2]) if isinstance(session.peer, tuple) else None
        captured = Captured(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(data), peer=peer)
        if self.store_dir is not None:
            self._store(captured)
        with self._lock:
            self.messages.append(captured)
        return "250 OK: queued"

    def _store(self, captured: Captured) -> None:
        assert self.store_dir is not None
        self.store_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._seq):06d}.eml"
        tmp = self.store_dir / f".{name}.tmp"
        tmp.write_bytes(captured.data)
        tmp.rename(self.store_dir / name)


class CaptureServer:
    """Runs in the caller's event loop (`await start()`), or in a thread of its own (`start_in_thread()`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        store_dir: Path | None = None,
        data_size_limit: int = 64 * 1024 * 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = CaptureHandler(store_dir)
        self.data_size_limit = data_size_limit
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _factory(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname="capture.test",
            data_size_limit=self.data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            ident="isseimail capture",
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def start_in_thread(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="smtp-capture", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("SMTP capture server did not start")

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @property
    def messages(self) -> list[Captured]:
        with self.handler._lock:
            return list(self.handler.messages)

    def to(self, address: str) -> list[Captured]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    async def wait_for(self, count: int, timeout: float = 20.0, **match: Any) -> list[Captured]:
        """Wait until at least `count` messages (to `rcpt=` when given) have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(match["rcpt"]) if "rcpt" in match else self.messages
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} messages, have {len(found)}")
            await asyncio.sleep(0.05)
