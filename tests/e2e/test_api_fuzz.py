"""A bounded schemathesis run over the whole gateway API (issue 18): generated and hostile requests for every
operation of /api/v1/openapi.json, as nobody, as a pass holder and as an administrator, against the running
system. Not one answer may be a server error (5xx); each run is capped in time, so `make test` stays short."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from isseimail_testing.headers import API_CLIENT_HEADERS
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import ApiClient, SystemProcesses, new_pass

pytestmark = pytest.mark.timeout(600)

MAX_SECONDS = 30  # per identity: hundreds of cases each, and the three runs stay short on a loaded machine
SEED = 18


async def _fuzz(system: SystemProcesses, report: Path, cookie: str | None, exclude: list[str]) -> None:
    st = Path(sys.executable).with_name("st")
    headers = [f"{name}: {value}" for name, value in API_CLIENT_HEADERS.items()]
    if cookie:
        headers.append(f"Cookie: {cookie}")
    command = [
        str(st),
        "run",
        f"{system.gateway_url}/api/v1/openapi.json",
        "--url",
        system.gateway_url,
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "25",
        "--max-time",
        str(MAX_SECONDS),
        "--seed",
        str(SEED),
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--no-color",
        *(arg for header in headers for arg in ("-H", header)),
        *(arg for name in exclude for arg in ("--exclude-name", name)),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=report.parent
    )
    out, _ = await asyncio.wait_for(process.communicate(), MAX_SECONDS * 4)
    text = out.decode(errors="replace")
    await asyncio.to_thread(report.write_text, text)
    assert process.returncode == 0, f"schemathesis found server errors (see {report}):\n{text[-6000:]}"


async def test_no_server_errors_for_anyone(system: SystemProcesses, smtp_server: CaptureServer, tmp_path: Path) -> None:
    """Anonymous, pass holder, administrator: every generated request answers below 500."""
    await _fuzz(system, tmp_path / "anonymous.txt", None, [])
    applicant, _ = await new_pass(system, smtp_server, "fuzz@corp.example.jp")
    async with applicant:
        await applicant.upload_list("hanako@example.co.jp,株式会社テスト,,,花子\r\n".encode())
        cookie = f"isseimail_session={applicant.http.cookies['isseimail_session']}"
        await _fuzz(system, tmp_path / "pass-holder.txt", cookie, ["DELETE /api/v1/session", "POST /api/v1/session"])
    async with ApiClient(system.gateway_url) as admin:
        await admin.admin_login(*system.admin)
        cookie = f"isseimail_admin={admin.http.cookies['isseimail_admin']}"
        await _fuzz(
            system, tmp_path / "admin.txt", cookie, ["DELETE /api/v1/admin/session", "POST /api/v1/admin/session"]
        )
