"""SMTP replies and their outcomes: 4xx retried, 5xx failed with the code, pauses, DLQ, MX routing."""

from __future__ import annotations

import asyncio
from typing import Any

from isseimail_dispatcher.work_messages import BATCH_QUEUE
from isseimail_shared.messaging import Broker
from isseimail_testing.dns import DnsServer
from isseimail_testing.queues import publish_raw, queue_depth
from isseimail_testing.smtp import CaptureServer

from .conftest import deliveries, running_dispatcher


async def test_temporary_replies_are_retried_then_delivered(
    fast_settings: Any, smtp_server: CaptureServer, make_recipients: Any, send_campaign: Any, database_url: str
) -> None:
    """451 on RCPT, 421 on MAIL and 452 on DATA for a while: those recipients are retried and delivered once."""
    rows = make_recipients(12)
    smtp_server.handler.fail_next("RCPT", 451, "4.7.1 greylisted, try later", times=4)
    smtp_server.handler.fail_next("MAIL", 421, "4.3.2 service shutting down", times=2)
    smtp_server.handler.fail_next("DATA", 452, "4.3.1 insufficient storage", times=2)
    async with running_dispatcher(fast_settings()):
        completed = await send_campaign(rows)
    assert (completed.sent, completed.failed) == (13, 0)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(
        [r.email for r in rows] + ["sender@corp.example.jp"]
    )
    state = await deliveries(database_url)
    retried = [r for r in state.values() if r["attempts"] > 1]
    assert len(retried) == 8
    assert all(r["state"] == "sent" and r["smtp_code"] == 250 for r in state.values())


async def test_permanent_rejection_fails_with_the_servers_code(
    fast_settings: Any,
    smtp_server: CaptureServer,
    watch: Any,
    make_recipients: Any,
    send_campaign: Any,
    database_url: str,
) -> None:
    """550 5.1.1 for two recipients: they fail with that code and text, the failures go out, others arrive."""
    rows = make_recipients(10)
    for bad in ("user3@example.jp", "user7@example.jp"):
        smtp_server.handler.fail_recipient(bad, 550, f"5.1.1 <{bad}>: user unknown")
    async with running_dispatcher(fast_settings()) as (api, _):
        completed = await send_campaign(rows)
        failed_events = await watch.wait_for_failed(2)
        progress = (
            await api.get(f"/internal/campaigns/{completed.campaign_id}/progress", headers={"X-Isseimail-Pass-Id": "1"})
        ).json()
    assert (completed.total, completed.sent, completed.failed) == (11, 9, 2)
    assert (progress["sent"], progress["failed"], progress["status"]) == (9, 2, "completed")
    assert {e.recipient for e in failed_events} == {"user3@example.jp", "user7@example.jp"}
    assert {(e.smtp_code, e.enhanced_status, e.row_number) for e in failed_events} == {
        (550, "5.1.1", 3),
        (550, "5.1.1", 7),
    }
    assert all(e.sender_email == "sender@corp.example.jp" for e in failed_events)
    state = await deliveries(database_url)
    assert state["user3@example.jp"]["state"] == "failed"
    assert "user unknown" in state["user3@example.jp"]["diagnostic"]
    assert len(smtp_server.messages) == 9
    assert not smtp_server.to("user3@example.jp")


async def test_retries_stop_at_the_maximum_age(
    fast_settings: Any, smtp_server: CaptureServer, watch: Any, make_recipients: Any, send_campaign: Any
) -> None:
    """A recipient that keeps answering 451 is failed, with the 451, once ISSEIMAIL_RETRY_MAX_AGE has passed."""
    smtp_server.handler.fail_recipient("user2@example.jp", 451, "4.2.0 mailbox busy")
    async with running_dispatcher(fast_settings(retry_max_age=1.0)):
        completed = await send_campaign(make_recipients(3))
        failed = watch.failed()
    assert (completed.sent, completed.failed) == (3, 1)
    assert len(failed) == 1
    assert (failed[0].recipient, failed[0].smtp_code, failed[0].enhanced_status) == ("user2@example.jp", 451, "4.2.0")


async def test_high_hard_failure_rate_pauses_the_campaign(
    fast_settings: Any,
    smtp_server: CaptureServer,
    snapshot_peer: Any,
    watch: Any,
    make_recipients: Any,
    accept_campaign: Any,
) -> None:
    """Past the failure rate (after the minimum), the campaign pauses, campaign.paused goes out, sending stops."""
    rows = make_recipients(40)
    campaign_id = snapshot_peer.add(rows)
    for row in rows[:20]:
        smtp_server.handler.fail_recipient(row.email, 550, "5.1.1 user unknown")
    settings = fast_settings(pause_min_attempts=5, batch_size=5, worker_prefetch=1)
    async with running_dispatcher(settings) as (api, _):
        await accept_campaign(campaign_id, len(rows))
        paused = await watch.wait_for("campaign.paused")
        await asyncio.sleep(1.0)
        progress = (
            await api.get(f"/internal/campaigns/{campaign_id}/progress", headers={"X-Isseimail-Pass-Id": "1"})
        ).json()
    assert paused[0].failed >= 5
    assert progress["status"] == "paused"
    assert progress["pending"] > 0
    assert not watch.of("campaign.completed")


async def test_unparseable_batch_message_goes_to_the_dlq(
    fast_settings: Any, smtp_server: CaptureServer, make_recipients: Any, send_campaign: Any, broker: Broker
) -> None:
    """Garbage on the batch queue ends in its DLQ; the worker keeps running and sends the next campaign."""
    async with running_dispatcher(fast_settings()) as (_, worker):
        for i, body in enumerate([b"not json", b'{"batch_id": "1"}', b"[1]", b'{"batch_id": 1, "x": 2}']):
            await publish_raw(broker, BATCH_QUEUE, body, message_id=f"bad-{i}")
        async with asyncio.timeout(10):
            while await queue_depth(broker, f"{BATCH_QUEUE}.dlq") != 4:  # noqa: ASYNC110 - polling the broker
                await asyncio.sleep(0.1)
        assert (await worker.get("/readyz")).status_code == 200
        await send_campaign(make_recipients(2))
    assert len(smtp_server.messages) == 3


async def test_direct_mx_mode_follows_the_mx_and_fails_domains_without_mail(
    fast_settings: Any,
    smtp_server: CaptureServer,
    dns_server: DnsServer,
    watch: Any,
    make_recipients: Any,
    send_campaign: Any,
) -> None:
    """MX mode resolves through the configured DNS, skips a dead MX, and fails null-MX and NXDOMAIN domains."""
    dns_server.zone("example.jp", mx=[(5, "dead.example.jp"), (10, "mx.example.jp")])
    dns_server.zone("dead.example.jp", a=["127.0.0.2"])
    dns_server.zone("mx.example.jp", a=["127.0.0.1"])
    dns_server.zone("corp.example.jp", a=["127.0.0.1"])  # no MX: the A record is the implicit MX
    dns_server.zone("nomail.jp", null_mx=True)
    rows = [*make_recipients(3), *make_recipients(1, "nomail.jp", start=4), *make_recipients(1, "gone.jp", start=5)]
    settings = fast_settings(
        delivery_mode="mx", mx_port=smtp_server.port, dns_nameservers=dns_server.nameserver, smtp_timeout=2.0
    )
    async with running_dispatcher(settings):
        completed = await send_campaign(rows)
        failed = {e.recipient: e for e in watch.failed()}
    assert (completed.sent, completed.failed) == (4, 2)
    assert failed["user4@nomail.jp"].smtp_code == 556
    assert failed["user5@gone.jp"].enhanced_status == "5.1.2"
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "sender@corp.example.jp",
        "user1@example.jp",
        "user2@example.jp",
        "user3@example.jp",
    ]


async def test_domain_rate_limit_spaces_out_sending(
    fast_settings: Any, smtp_server: CaptureServer, make_recipients: Any, send_campaign: Any
) -> None:
    """60/min for example.jp across two workers: a burst of 6, then about one a second; all arrive once."""
    settings = fast_settings(domain_limits='{"example.jp": {"connections": 1, "per_minute": 60}}')
    async with running_dispatcher(settings, workers=2):
        await send_campaign(make_recipients(9))
    arrivals = sorted(m.received_at for m in smtp_server.messages if m.rcpt_tos[0].endswith("@example.jp"))
    assert len(arrivals) == 9
    assert arrivals[-1] - arrivals[0] >= 2.0  # 3 messages past the burst at 1/s
    assert arrivals[6] - arrivals[0] >= 0.5
