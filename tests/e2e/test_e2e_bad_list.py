"""A list with bad addresses is refused with the rows as Excel numbers them; fixed and uploaded again, accepted."""

from __future__ import annotations

import csv
import io
import time

import pytest
from tests.e2e.support import cp932_csv

from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import SystemProcesses, new_pass

pytestmark = pytest.mark.timeout(240)


def lines_with_problems() -> tuple[list[list[str]], dict[int, str]]:
    """CSV lines after the header (a blank line included) and {Excel row: reason code} of the bad ones."""
    lines: list[list[str]] = []
    bad: dict[int, str] = {}
    for i in range(1, 21):
        lines.append([f"user{i}@kaisha{i % 10}.example.jp", f"株式会社テスト{i}", "営業部", "", f"担当{i}"])
        if i == 9:
            lines.append([])  # a blank line: counted by Excel, so by the row numbers too
    # Excel row = index in `lines` + 2 (the header is row 1)
    lines[2][0] = "user3.kaisha3.example.jp"
    bad[4] = "syntax"
    lines[6][0] = "ｕｓｅｒ７＠kaisha7.example.jp"
    bad[8] = "full_width"
    lines[12][0] = "user12@nowhere.example.jp"  # no such domain on the DNS server
    bad[14] = "domain_not_found"
    lines[16][0] = lines[1][0]  # the address of Excel row 3 again
    bad[18] = "duplicate"
    return lines, bad


async def test_bad_rows_refused_then_fixed_and_accepted(system: SystemProcesses, smtp_server: CaptureServer) -> None:
    started = time.monotonic()
    lines, bad = lines_with_problems()
    applicant, _ = await new_pass(system, smtp_server, "jiro@corp.example.jp")
    async with applicant:
        refused = await applicant.wait_list(await applicant.upload_list(cp932_csv(lines)))
        assert refused["status"] == "invalid"
        assert refused["rows"] == 20
        assert (refused["ok"], refused["invalid"]) == (16, 4)
        assert {r["row"]: r["code"] for r in refused["bad_rows"]} == bad
        assert all(r["message"] for r in refused["bad_rows"])  # a Japanese reason for each row

        errors = await applicant.http.get(f"/api/v1/lists/{refused['list_id']}/errors.csv")
        assert errors.status_code == 200
        table = list(csv.reader(io.StringIO(errors.content.decode("utf-8-sig"))))
        assert [int(r[0]) for r in table[1:]] == sorted(bad)
        assert table[2][1] == "ｕｓｅｒ７＠kaisha7.example.jp"

        # a campaign cannot be sent with it
        draft = await applicant.create_campaign(
            refused["list_id"], sender_email="jiro@corp.example.jp", sender_name="次郎", subject="件名", body="本文"
        )
        blocked = await applicant.http.post(f"/api/v1/campaigns/{draft}/send")
        assert blocked.status_code == 422, blocked.text
        assert "list_id" in blocked.json().get("errors", {})

        # fixed: the right addresses, the duplicate removed
        fixed = [row for row in lines if row != lines[16]]
        fixed[2][0] = "user3@kaisha3.example.jp"
        fixed[6][0] = "user7@kaisha7.example.jp"
        fixed[12][0] = "user12@kaisha2.example.jp"
        accepted = await applicant.wait_list(await applicant.upload_list(cp932_csv(fixed)))
        assert (accepted["status"], accepted["rows"], accepted["ok"], accepted["bad_rows"]) == ("valid", 19, 19, [])
        campaign_id = await applicant.create_campaign(
            accepted["list_id"], sender_email="jiro@corp.example.jp", sender_name="次郎", subject="件名", body="本文"
        )
        preview = await applicant.preview(campaign_id)
        assert preview["text"].startswith("株式会社テスト1\n営業部\n担当1 様\n\n本文")
    print(f"\nbad list: {time.monotonic() - started:.1f}s")
