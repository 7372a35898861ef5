"""A small clamd client: INSTREAM over tcp://host:port or unix:///path, with one deadline per scan.

clamd answers `stream: OK`, `stream: <signature> FOUND`, or `... ERROR`. Anything else — refused
connection, timeout, a closed socket, an ERROR line — raises `ScanFailed`: the caller must refuse the file,
never let it through unscanned.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = 64 * 1024  # clamd's StreamMaxLength counts the whole stream; chunking just bounds our writes
MAX_REPLY = 4096


class ScanFailed(Exception):
    """The file could not be scanned (clamd unreachable, too slow, or reported an error)."""


@dataclass(frozen=True)
class ClamdAddress:
    host: str | None = None
    port: int = 3310
    path: str | None = None

    @classmethod
    def parse(cls, url: str) -> ClamdAddress:
        parts = urlsplit(url.strip())
        if parts.scheme == "tcp":
            if not parts.hostname:
                raise ValueError("clamd URL tcp:// needs a host, e.g. tcp://clamav:3310")
            return cls(host=parts.hostname, port=parts.port or 3310)
        if parts.scheme == "unix":
            if parts.netloc or not parts.path.startswith("/"):
                raise ValueError("clamd URL unix:// needs an absolute socket path, e.g. unix:///run/clamd.ctl")
            return cls(path=parts.path)
        raise ValueError(f"unsupported clamd URL scheme {parts.scheme!r}: use tcp:// or unix://")

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.path else f"tcp://{self.host}:{self.port}"


class ClamdClient:
    def __init__(self, url: str, timeout: float) -> None:
        self.address = ClamdAddress.parse(url)
        self.timeout = timeout

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.address.path:
            return await asyncio.open_unix_connection(self.address.path)
        return await asyncio.open_connection(self.address.host, self.address.port)

    async def _command(self, command: bytes, payload: bytes | None = None) -> str:
        reader, writer = await self._connect()
        try:
            writer.write(b"z" + command + b"\0")
            if payload is not None:
                for start in range(0, len(payload), CHUNK):
                    chunk = payload[start : start + CHUNK]
                    writer.write(struct.pack(">I", len(chunk)) + chunk)
                    await writer.drain()
                writer.write(struct.pack(">I", 0))
            await writer.drain()
            reply = await reader.readuntil(b"\0")
        except asyncio.LimitOverrunError as exc:
            raise ScanFailed("clamd reply too long") from exc
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if len(reply) > MAX_REPLY:
            raise ScanFailed("clamd reply too long")
        return reply[:-1].decode("utf-8", "replace").strip()

    async def scan(self, data: bytes) -> str | None:
        """The signature name when clamd finds something, None when clean; ScanFailed otherwise."""
        try:
            reply = await asyncio.wait_for(self._command(b"INSTREAM", data), self.timeout)
        except TimeoutError as exc:
            raise ScanFailed(f"clamd at {self.address} did not answer within {self.timeout:g}s") from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise ScanFailed(f"clamd at {self.address} unreachable: {exc!r}") from exc
        body = reply.removeprefix("stream:").strip()
        if body == "OK":
            return None
        if body.endswith(" FOUND"):
            return body.removesuffix(" FOUND").strip() or "unknown"
        raise ScanFailed(f"clamd at {self.address} answered {reply[:200]!r}")

    async def ping(self) -> bool:
        try:
            return await asyncio.wait_for(self._command(b"PING"), self.timeout) == "PONG"
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ScanFailed):
            return False
