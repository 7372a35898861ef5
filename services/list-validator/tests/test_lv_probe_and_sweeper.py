"""The optional SMTP probe against a real SMTP server, and the sweeper that republishes lost domain checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from isseimail_list_validator import lists
from isseimail_list_validator.app import create_app
from isseimail_list_validator.rows import PreparedRow
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.lists import acting, csv_bytes, upload, wait_done
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer


async def test_smtp_probe_finds_missing_mailboxes_and_catch_all_domains(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer, smtp_server: CaptureServer
) -> None:
    """550 5.1.1 → invalid, 4xx → unverified, a domain accepting a random local part → ok (catch-all); no DATA."""
    for domain in ("probe.co.jp", "catchall.co.jp"):
        dns_server.zone(domain, mx=[(10, f"mx.{domain}")])
        dns_server.zone(f"mx.{domain}", a=["127.0.0.1"])
    handler = smtp_server.handler
    handler.fail_recipient("gone@probe.co.jp", 550, "5.1.1 User unknown")
    handler.fail_recipient("busy@probe.co.jp", 451, "4.3.0 Try again later")
    handler.fail_next("RCPT", 550, "5.1.1 No such user")  # the random canary address of probe.co.jp
    settings = lv_settings(smtp_probe=True, smtp_probe_port=smtp_server.port, smtp_probe_timeout_seconds=5)
    async with running_app(create_app(settings)) as client:
        rows = [(f"{name}@probe.co.jp", "", "", "", "各位") for name in ("here", "gone", "busy")]
        summary = await wait_done(client, (await upload(client, csv_bytes(rows, header=False))).json()["list_id"])
        bad = {r["row"]: (r["status"], r["code"]) for r in summary["bad_rows"]}
        assert bad[2] == ("invalid", "mailbox_not_found")
        assert bad[3] == ("unverified", "smtp_unverified")
        assert bad[1] == ("unverified", "suppression_unavailable")  # exists, but the notifier is unreachable here
        assert summary["status"] == "invalid"

        rows = [("anyone@catchall.co.jp", "", "", "", "各位")]
        list_id = (await upload(client, csv_bytes(rows, header=False))).json()["list_id"]
        summary = await wait_done(client, list_id)
    assert [(r["row"], r["code"]) for r in summary["bad_rows"]] == [(1, "suppression_unavailable")]
    assert handler.commands["DATA"] == 0
    assert smtp_server.messages == []


async def test_sweeper_republishes_checks_of_a_list_left_validating(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer
) -> None:
    """A list whose checks were never published (a crash after commit) is finished by the sweeper; old lists go."""
    dns_server.zone("good.co.jp", mx=[(10, "mx.good.co.jp")])
    settings = lv_settings(redispatch_after_seconds=0.3, unverified_policy="allow")
    app = create_app(settings)
    async with running_app(app) as client:
        runtime = app.state.runtime
        new = lists.NewList(uuid.uuid4(), 7, "123456", "x.csv", "utf-8", False, "allow")
        row = PreparedRow(1, "a@good.co.jp", "a@good.co.jp", "good.co.jp", "", "", "", "各位", "pending", "ok")
        assert await lists.create_list(runtime.pool, new, [row]) == ["good.co.jp"]
        # nothing was published: only the sweeper can finish this list
        summary = await wait_done(client, str(new.list_id), timeout=20)
        assert (summary["status"], summary["rows"], summary["checked"]) == ("valid", 1, 1)
        assert dns_server.queries[("good.co.jp", "MX")] >= 1
        # retention: a list uploaded 31 days ago is deleted with its rows, a fresh one stays
        await runtime.pool.execute(
            "UPDATE lists SET created_at = now() - interval '31 days' WHERE list_id = $1", new.list_id
        )
        fresh = (await upload(client, csv_bytes([("b@good.co.jp", "", "", "", "各位")]))).json()["list_id"]
        assert await lists.delete_expired(runtime.pool, 30) == 1
        assert (await client.get(f"/internal/lists/{new.list_id}", headers=acting())).status_code == 404
        assert (await client.get(f"/internal/lists/{fresh}", headers=acting())).status_code == 200
        assert await runtime.pool.fetchval("SELECT count(*) FROM list_rows WHERE list_id = $1", new.list_id) == 0
