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


@pytest.mark.parametrize("pipelining", [True, False])
async def test_data_path_dot_stuffs_and_survives_refusals(smtp_server: CaptureServer, pipelining: bool) -> None:
    """Without CHUNKING: the server gets the message back intact (dots too); 4xx is temporary, 421 breaks."""
    smtp_server.handler.pipelining = pipelining
    conn = await connect(smtp_server.port)
    assert not conn.chunking
    assert conn.pipelining is pipelining
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


def mail(n: int) -> bytes:
    return f"Subject: {n}\r\n\r\n.line {n}\r\n".encode()


async def test_the_next_envelope_goes_ahead_with_the_data(smtp_server: CaptureServer) -> None:
    """With PIPELINING, `then` travels behind the message: the server has answered the next MAIL and RCPT
    before the next send; a refusal of the envelope sent ahead is the next send's error; a refused message
    still lets the envelope behind it through."""
    smtp_server.handler.fail_recipient("gone@example.jp", 550, "5.1.1 no such user")
    conn = await connect(smtp_server.port)
    assert conn.pipelining
    await conn.send("b-1@bounce.test", "a@example.jp", mail(1), then=("b-2@bounce.test", "b@example.jp"))
    assert conn.ahead == ("b-2@bounce.test", "b@example.jp")
    assert smtp_server.handler.commands["MAIL"] == 2  # the second envelope went out with the first message
    await conn.send("b-2@bounce.test", "b@example.jp", mail(2), then=("b-3@bounce.test", "gone@example.jp"))
    with pytest.raises(SmtpError) as gone:
        await conn.send("b-3@bounce.test", "gone@example.jp", mail(3))
    assert gone.value.permanent
    assert gone.value.reply is not None
    assert gone.value.reply.code == 550
    assert smtp_server.handler.commands["MAIL"] == 3  # the refusal was known: nothing written for it
    assert not conn.broken
    smtp_server.handler.fail_next("DATA", 554, "5.7.1 content refused")
    with pytest.raises(SmtpError) as refused:
        await conn.send("b-4@bounce.test", "d@example.jp", mail(4), then=("b-5@bounce.test", "e@example.jp"))
    assert refused.value.permanent
    await conn.send("b-5@bounce.test", "e@example.jp", mail(5))
    assert conn.ahead is None
    await conn.quit()
    got = [(m.mail_from, m.rcpt_tos, m.data.replace(b"\r\n", b"\n")) for m in smtp_server.messages]
    assert got == [
        ("b-1@bounce.test", ["a@example.jp"], mail(1).replace(b"\r\n", b"\n")),
        ("b-2@bounce.test", ["b@example.jp"], mail(2).replace(b"\r\n", b"\n")),
        ("b-5@bounce.test", ["e@example.jp"], mail(5).replace(b"\r\n", b"\n")),
    ]


async def test_a_421_to_an_envelope_sent_ahead_is_that_recipients_outcome(smtp_server: CaptureServer) -> None:
    """A rate limit (421) answered to the envelope sent ahead ends the connection, but is not lost: the send
    of that recipient raises it (so the worker records it and slows down), and only then is the connection
    unusable."""
    smtp_server.handler.fail_recipient("busy@example.jp", 421, "4.7.0 Too many messages, try again later")
    conn = await connect(smtp_server.port)
    reply = await conn.send("b-1@bounce.test", "a@example.jp", mail(1), then=("b-2@bounce.test", "busy@example.jp"))
    assert reply.code == 250
    assert conn.broken
    assert conn.refusal_waiting(("b-2@bounce.test", "busy@example.jp"))
    with pytest.raises(SmtpError) as busy:
        await conn.send("b-2@bounce.test", "busy@example.jp", mail(2))
    assert busy.value.reply is not None
    assert (busy.value.reply.code, busy.value.reply.enhanced) == (421, "4.7.0")
    assert busy.value.connection_lost
    with pytest.raises(SmtpError, match="broken"):
        await conn.send("b-3@bounce.test", "c@example.jp", mail(3))
    await conn.quit()
    assert [m.rcpt_tos for m in smtp_server.messages] == [["a@example.jp"]]


async def test_an_envelope_sent_ahead_and_not_used_delivers_nothing(smtp_server: CaptureServer) -> None:
    """Giving the connection up (QUIT, or a send of another envelope) while the server waits for the data of
    the envelope sent ahead closes it: that message is never delivered, not even empty."""
    first = await connect(smtp_server.port)
    await first.send("b-1@bounce.test", "a@example.jp", mail(1), then=("b-2@bounce.test", "b@example.jp"))
    await first.quit()
    assert first.broken
    second = await connect(smtp_server.port)
    await second.send("b-3@bounce.test", "c@example.jp", mail(3), then=("b-4@bounce.test", "d@example.jp"))
    with pytest.raises(SmtpError):
        await second.send("b-5@bounce.test", "e@example.jp", mail(5))
    assert second.broken
    third = await connect(smtp_server.port)
    await third.send("b-6@bounce.test", "f@example.jp", mail(6), then=("b-7@bounce.test", "bad\r\nRSET@example.jp"))
    assert third.ahead is None  # an address that could split the command line never goes ahead
    await third.quit()
    await asyncio.sleep(0.2)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["a@example.jp"], ["c@example.jp"], ["f@example.jp"]]


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
