"""Domain checks travel as work messages of many domains each; the older one-domain form is still read."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from isseimail_list_validator import lists
from isseimail_list_validator.app import create_app
from isseimail_list_validator.rows import PreparedRow
from isseimail_list_validator.settings import ListValidatorSettings
from isseimail_list_validator.work_messages import DOMAIN_QUEUE, MAX_TASK_DOMAINS, DomainTask, task_size
from isseimail_testing.dns import DnsServer
from isseimail_testing.lists import csv_bytes, upload, wait_done
from isseimail_testing.process import running_app
from isseimail_testing.queues import publish_raw


@given(st.integers(min_value=1, max_value=200_000), st.integers(min_value=1, max_value=MAX_TASK_DOMAINS))
def test_task_size_cuts_a_list_into_enough_small_messages(domains: int, max_batch: int) -> None:
    """At most max_batch domains a message; one a message up to 32 domains, then 16 messages or more."""
    size = task_size(domains, max_batch)
    assert 1 <= size <= max_batch
    messages = -(-domains // size)
    assert size == 1 if domains <= 32 else (messages >= 16 or size == max_batch)


def test_task_reads_both_forms_and_refuses_bad_ones() -> None:
    """{"domains": [...]} and the older {"domain": ...} both parse; empty, oversized or unknown fields do not."""
    list_id = uuid.uuid4()
    many = DomainTask.model_validate_json(json.dumps({"list_id": str(list_id), "domains": ["a.jp", "b.jp"]}))
    assert many.domains == ["a.jp", "b.jp"]
    one = DomainTask.model_validate_json(json.dumps({"list_id": str(list_id), "domain": "a.jp"}))
    assert (one.list_id, one.domains) == (list_id, ["a.jp"])
    for bad in (
        {"list_id": str(list_id), "domains": []},
        {"list_id": str(list_id), "domains": [""]},
        {"list_id": str(list_id), "domains": ["x.jp"] * (MAX_TASK_DOMAINS + 1)},
        {"list_id": str(list_id), "domain": "a.jp", "extra": 1},
        {"list_id": "nope", "domains": ["a.jp"]},
    ):
        with pytest.raises(ValidationError):
            DomainTask.model_validate_json(json.dumps(bad))


async def test_a_list_of_many_domains_is_checked_once_per_domain(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer
) -> None:
    """300 domains (several per message): every row gets its domain's outcome, each domain asked ~once."""
    for i in range(300):
        if i % 3:
            dns_server.zone(f"d{i}.co.jp", mx=[(10, f"mx.d{i}.co.jp")])
    rows = [(f"u{n}@d{n % 300}.co.jp", "", "", "", "各位") for n in range(900)]
    async with running_app(create_app(lv_settings(unverified_policy="allow", dns_timeout_seconds=2))) as client:
        response = await upload(client, csv_bytes(rows))
        assert response.json()["domains"] == 300
        summary = await wait_done(client, response.json()["list_id"])
        bad = {r["row"]: r["code"] for r in summary["bad_rows"] if r["status"] == "invalid"}
    assert bad == {n + 2: "domain_not_found" for n in range(900) if n % 300 % 3 == 0}
    assert (summary["rows"], summary["invalid"]) == (900, 300)
    # Once per domain, not once per row (3 rows each). c-ares may retransmit a query the busy test server
    # answers late, and how many are late depends on the machine's load, so only the bound per domain is fixed.
    mx_queries = [dns_server.queries[(f"d{i}.co.jp", "MX")] for i in range(300)]
    assert (min(mx_queries), max(mx_queries)) in {(1, 1), (1, 2)}


async def test_a_one_domain_message_of_the_older_form_still_finishes_its_list(
    lv_settings: Callable[..., ListValidatorSettings], dns_server: DnsServer
) -> None:
    """A message published before an upgrade ({"domain": ...}) is checked and finishes the list."""
    dns_server.zone("old.co.jp", mx=[(10, "mx.old.co.jp")])
    app = create_app(lv_settings(unverified_policy="allow"))
    async with running_app(app) as client:
        runtime = app.state.runtime
        new = lists.NewList(uuid.uuid4(), 7, "123456", "x.csv", "utf-8", False, "allow")
        row = PreparedRow(1, "a@old.co.jp", "a@old.co.jp", "old.co.jp", "", "", "", "各位", "pending", "ok")
        assert await lists.create_list(runtime.pool, new, [row]) == ["old.co.jp"]
        body = json.dumps({"list_id": str(new.list_id), "domain": "old.co.jp"}).encode()
        await publish_raw(runtime.broker, DOMAIN_QUEUE, body, message_id=f"{new.list_id}:old.co.jp")
        summary = await wait_done(client, str(new.list_id), timeout=10)
    assert (summary["status"], summary["ok"]) == ("valid", 1)
