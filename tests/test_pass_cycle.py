"""The 1DayPass cycle across the real pass-service, notifier and gateway (issue 3's "done when").

apply → approve → both credential mails arrive → login on the day works, on another day or from
outside the intranet fails → consumption wins once under 50 concurrent calls (one pass.consumed on the
broker) → login after consumption gets the 失効 message → no second pass for that application.
A rejected application is mailed with its reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any
from zoneinfo import ZoneInfo

import aio_pika
import asyncpg

from isseimail_gateway.app import create_app as gateway_app
from isseimail_gateway.settings import GatewaySettings
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.http import serving
from isseimail_testing.process import free_port, running_app
from isseimail_testing.smtp import CaptureServer

JST = ZoneInfo("Asia/Tokyo")
DAY = dt.date(2026, 12, 3)
ADMIN = {"email": "admin@example.jp", "password": "admin-password-long-enough"}
APPLICANT = "taro@example.jp"
EXPIRED = "この1DayPassは失効しています。再度申請してください。"
GENERIC = "ユーザーID、パスワードまたは利用日が正しくありません。"


class Clock:
    def __init__(self) -> None:
        self.when = dt.datetime(2026, 12, 1, 9, 0, tzinfo=JST)

    def __call__(self) -> dt.datetime:
        return self.when

    def at(self, day: dt.date, hour: int = 10) -> None:
        self.when = dt.datetime(day.year, day.month, day.day, hour, tzinfo=JST)


def application(**overrides: str) -> dict[str, str]:
    return {
        "applicant_name": "山田 太郎",
        "applicant_email": APPLICANT,
        "department": "総務部",
        "use_date": DAY.isoformat(),
        "purpose": "年末のご挨拶の一斉メール",
        **overrides,
    }


def credentials_in(mail_text: str) -> tuple[str, str]:
    user = re.search(r"^ユーザーID は \[(\d{6})\] です。$", mail_text, re.MULTILINE)
    password = re.search(r"^パスワード は \[([^\]\s]{10,})\] です。$", mail_text, re.MULTILINE)
    assert user, mail_text
    assert password, mail_text
    return user.group(1), password.group(1)


async def test_pass_cycle_across_services(
    make_settings: Callable[..., Any], smtp_server: CaptureServer, amqp_url: str, database_url: str
) -> None:
    """The whole 1DayPass cycle with the real broker, database and SMTP server."""
    clock = Clock()
    passes = pass_app(
        make_settings(
            PassSettings,
            admin_email=ADMIN["email"],
            admin_password=ADMIN["password"],
            login_url="http://isseimail.intra/login",
        ),
        clock=clock,
    )
    async with AsyncExitStack() as stack:
        broker = await aio_pika.connect(amqp_url)
        stack.push_async_callback(broker.close)
        channel = await broker.channel()
        events = await channel.declare_exchange("isseimail.events", aio_pika.ExchangeType.TOPIC, durable=True)
        consumed_queue = await channel.declare_queue("test.cycle.pass-consumed", durable=True)
        await consumed_queue.bind(events, routing_key="pass.consumed")

        await stack.enter_async_context(
            running_app(notifier_app(make_settings(NotifierSettings, bounce_listen_port=free_port())))
        )
        pass_client = await stack.enter_async_context(running_app(passes))
        pass_url = await stack.enter_async_context(serving(passes))

        def gateway(client_ip: str) -> Any:
            settings = make_settings(GatewaySettings, pass_url=pass_url, session_secret="cycle-secret")
            return running_app(gateway_app(settings), client_ip=client_ip)

        gw = await stack.enter_async_context(gateway("192.168.10.20"))
        outside = await stack.enter_async_context(gateway("203.0.113.5"))

        # apply, approve
        r = await gw.post("/api/v1/applications", json=application())
        assert r.status_code == 201, r.text
        application_id = r.json()["application_id"]
        assert (await gw.post("/api/v1/admin/session", json=ADMIN)).status_code == 200
        r = await gw.post(f"/api/v1/admin/applications/{application_id}/approve")
        assert r.status_code == 201, r.text
        issued = r.json()

        # both mails arrive with the credentials, in the manual's lines
        applicant_mail = (await smtp_server.wait_for(1, rcpt=APPLICANT))[0].message()
        admin_mails = await smtp_server.wait_for(2, rcpt=ADMIN["email"])  # admin.created + the credentials copy
        admin_mail = next(m.message() for m in admin_mails if "パスワード は [" in m.message().get_content())
        user_id, password = credentials_in(applicant_mail.get_content())
        assert credentials_in(admin_mail.get_content()) == (user_id, password)
        assert user_id == issued["user_id"]
        body = applicant_mail.get_content()
        assert "http://isseimail.intra/login" in body
        assert "2026年12月3日" in body
        assert "無効" in body

        login = {"user_id": user_id, "password": password, "use_date": DAY.isoformat()}
        # another day: too early, or the wrong day typed on the right day
        clock.at(DAY - dt.timedelta(days=1))
        r = await gw.post("/api/v1/session", json=login)
        assert (r.status_code, r.json()["detail"]) == (401, GENERIC)
        clock.at(DAY)
        r = await gw.post("/api/v1/session", json={**login, "use_date": "2026-12-04"})
        assert (r.status_code, r.json()["detail"]) == (401, GENERIC)
        # outside the intranet
        r = await outside.post("/api/v1/session", json=login)
        assert r.status_code == 403
        # on the day, from the intranet
        r = await gw.post("/api/v1/session", json=login)
        assert r.status_code == 200, r.text
        assert (await gw.get("/api/v1/session")).status_code == 200

        # consumption: 50 concurrent calls, one winner, one event on the broker
        answers = await asyncio.gather(
            *(
                pass_client.post(
                    f"/internal/passes/{issued['pass_id']}/consume", json={"campaign_id": str(uuid.uuid4())}
                )
                for _ in range(50)
            )
        )
        assert sorted(a.status_code for a in answers) == [200] + [409] * 49
        db = await asyncpg.connect(database_url, server_settings={"search_path": "pass"})
        stack.push_async_callback(db.close)
        deadline = time.monotonic() + 15
        while await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            assert time.monotonic() < deadline, "outbox not drained"
            await asyncio.sleep(0.05)
        consumed = []
        while (message := await consumed_queue.get(no_ack=True, fail=False, timeout=2)) is not None:
            consumed.append(json.loads(message.body))
        assert len(consumed) == 1
        assert consumed[0]["payload"]["pass_id"] == issued["pass_id"]

        # after consumption: the session ends, a new login gets the 失効 message
        r = await gw.get("/api/v1/session")
        assert (r.status_code, r.json()["detail"]) == (401, EXPIRED)
        r = await gw.post("/api/v1/session", json=login)
        assert (r.status_code, r.json()["detail"]) == (403, EXPIRED)

        # no second pass for that application (the clock moved two days: the admin's session ended, log in again)
        assert (await gw.post("/api/v1/admin/session", json=ADMIN)).status_code == 200
        r = await gw.post(f"/api/v1/admin/applications/{application_id}/approve")
        assert r.status_code == 409
        assert await db.fetchval("SELECT count(*) FROM passes WHERE application_id = $1", application_id) == 1

        # a rejection is mailed with its reason
        r = await gw.post("/api/v1/applications", json=application(applicant_email="hanako@example.jp"))
        second = r.json()["application_id"]
        r = await gw.post(
            f"/api/v1/admin/applications/{second}/reject", json={"reason": "利用目的を具体的に記入してください。"}
        )
        assert r.status_code == 200, r.text
        rejection = (await smtp_server.wait_for(1, rcpt="hanako@example.jp"))[0].message()
        assert "利用目的を具体的に記入してください。" in rejection.get_content()

    # exactly one credential mail per recipient, nothing re-sent
    assert len(smtp_server.to(APPLICANT)) == 1
    assert sum("パスワード は [" in m.message().get_content() for m in smtp_server.to(ADMIN["email"])) == 1
