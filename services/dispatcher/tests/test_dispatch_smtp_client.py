"""The worker's SMTP client against real servers: aiosmtpd (no PIPELINING, DATA) and a small pipelining,
CHUNKING server written here (BDAT), with replies that fail per recipient or per transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from isseimail_dispatcher.smtp_client import SmtpConnection, SmtpError
from isseimail_testing.smtp import CaptureServer

BIG = b"Subject: big\r\n\r\n" + b".dot line\r\n" + (b"QUJD" * 19 + b"\r\n") * 30_000 + b".\r\n..\r\nend"


class ChunkingServer:
    """Answers every pipelined group in order; MAIL/RCPT replies per rule; BDAT LAST and DATA store the message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, bytes]] = []
        self.rcpt_reply: dict[str, bytes] = {}
        self.writes = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 chunk.test ESMTP\r\n")
        mail = rcpt = ""
        ok_rcpt = False
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                cmd = line.decode().strip()
                verb = cmd.split(" ")[0].upper()
                if verb == "EHLO":
                    writer.write(b"250-chunk.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n")
                elif verb == "MAIL":
                    mail = cmd[10:].strip("<>")
                    writer.write(b"250 2.1.0 ok\r\n")
                elif verb == "RCPT":
                    rcpt = cmd[8:].strip("<>")
                    reply = self.rcpt_reply.get(rcpt, b"250 2.1.5 ok\r\n")
                    ok_rcpt = reply.startswith(b"2")
                    writer.write(reply)
                elif verb == "BDAT":
                    size = int(cmd.split(" ")[1])
                    data = await reader.readexactly(size)  # consumed whatever the envelope's fate
                    if ok_rcpt:
                        self.messages.append((mail, rcpt, data))
                        writer.write(b"250 2.0.0 queued\r\n")
                    else:
                        writer.write(b"554 5.5.1 no valid recipients\r\n")
                elif verb == "QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0, limit=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def chunking_server() -> AsyncIterator[ChunkingServer]:
    server = ChunkingServer()
    await server.start()
    yield server
    await server.stop()


async def connect(port: int) -> SmtpConnection:
    return await SmtpConnection.open("127.0.0.1", port, helo="test.example", timeout=10)


async def test_bdat_sends_the_message_untouched_and_keeps_the_connection(chunking_server: ChunkingServer) -> None:
    """With CHUNKING, 2 MB leave byte for byte (no dot-stuffing); a refused recipient leaves the connection usable."""
    chunking_server.rcpt_reply["bad@example.jp"] = b"550 5.1.1 no such user\r\n"
    conn = await connect(chunking_server.port)
    assert conn.chunking
    reply = await conn.send("b-1@bounce.test", "a@example.jp", BIG)
    assert reply.code == 250
    with pytest.raises(SmtpError) as refused:
        await conn.send("b-2@bounce.test", "bad@example.jp", b"Subject: x\r\n\r\nhi\r\n")
    assert refused.value.permanent
    assert refused.value.reply is not None
    assert (refused.value.reply.code, refused.value.reply.enhanced) == (550, "5.1.1")
    assert not conn.broken
    await conn.send("b-3@bounce.test", "c@example.jp", b"Subject: y\r\n\r\nhi\r\n")
    await conn.quit()
    assert [(m, r) for m, r, _ in chunking_server.messages] == [
        ("b-1@bounce.test", "a@example.jp"),
        ("b-3@bounce.test", "c@example.jp"),
    ]
    assert chunking_server.messages[0][2] == BIG


async def test_data_path_dot_stuffs_and_survives_refusals(smtp_server: CaptureServer) -> None:
    """Without CHUNKING: the server gets the message back intact (dots too); 4xx is temporary, 421 breaks."""
    conn = await connect(smtp_server.port)
    assert not conn.chunking
    await conn.send("b-1@bounce.test", "a@example.jp", BIG)
    smtp_server.handler.fail_next("RCPT", 451, "4.7.1 later")
    with pytest.raises(SmtpError) as later:
        await conn.send("b-2@bounce.test", "b@example.jp", b"Subject: x\r\n\r\nhi\r\n")
    assert not later.value.permanent
    assert not conn.broken
    smtp_server.handler.fail_next("DATA", 552, "5.3.4 too big")
    with pytest.raises(SmtpError) as big:
        await conn.send("b-3@bounce.test", "c@example.jp", b"Subject: x\r\n\r\nhi\r\n")
    assert big.value.permanent
    smtp_server.handler.fail_next("MAIL", 421, "4.3.2 closing")
    with pytest.raises(SmtpError) as closing:
        await conn.send("b-4@bounce.test", "d@example.jp", b"Subject: x\r\n\r\nhi\r\n")
    assert closing.value.connection_lost
    assert conn.broken
    await conn.quit()
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0].data.replace(b"\r\n", b"\n")
    assert received.rstrip(b"\n") == BIG.replace(b"\r\n", b"\n")


async def test_send_cancelled_mid_transaction_breaks_the_connection() -> None:
    """A send cancelled while a reply is due leaves the connection broken, never reused: the next MAIL on it
    would meet the old transaction ("503 nested MAIL") or read the replies meant for the old one."""

    async def silent_after_mail(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 slow.test ESMTP\r\n")
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                verb = line.split(b" ")[0].strip().upper()
                if verb == b"EHLO":
                    writer.write(b"250 slow.test\r\n")
                elif verb == b"MAIL":
                    writer.write(b"250 2.1.0 ok\r\n")
                # RCPT: no answer, as a server that stalls
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(silent_after_mail, "127.0.0.1", 0)
    try:
        conn = await connect(server.sockets[0].getsockname()[1])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.send("b-1@bounce.test", "a@example.jp", b"Subject: x\r\n\r\nhi\r\n"), 0.5)
        assert conn.broken
        with pytest.raises(SmtpError):
            await conn.send("b-2@bounce.test", "b@example.jp", b"Subject: y\r\n\r\nhi\r\n")
    finally:
        server.close()
        await server.wait_closed()


async def test_unreachable_server_is_a_temporary_connection_error() -> None:
    """Nobody listening: SmtpError without a reply, which the worker treats as temporary."""
    with pytest.raises(SmtpError) as refused:
        await SmtpConnection.open("127.0.0.1", 1, helo="t", timeout=2)
    assert refused.value.reply is None
    assert not refused.value.permanent
