"""The harness itself: SIGKILL and restart keep a process's port and environment, and a restarted gateway
still honours the sessions it signed before (the same secret), so fault runs can rely on both."""

from __future__ import annotations

import httpx
import pytest

from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import SystemProcesses, new_pass

pytestmark = pytest.mark.timeout(240)


async def test_kill_and_restart_keep_port_and_sessions(system: SystemProcesses, smtp_server: CaptureServer) -> None:
    assert set(system.names) == {
        "notifier", "pass-service", "list-validator", "composer", "dispatcher", "gateway", "worker-0",
    }  # fmt: skip
    before = system.pids()
    assert set(before) == set(system.names)
    applicant, _ = await new_pass(system, smtp_server, "harness@corp.example.jp")
    async with applicant:
        system.kill("gateway")
        assert "gateway" not in system.pids()
        with pytest.raises(httpx.TransportError):
            await applicant.http.get("/api/v1/session")
        await system.restart("gateway")
        assert system.pids()["gateway"] != before["gateway"]
        assert system.gateway_url.endswith(f":{system.ports['gateway']}")
        session = await applicant.http.get("/api/v1/session")
        assert session.status_code == 200, session.text

        # SIGTERM: a graceful stop (uvicorn re-raises the signal after shutting down, hence -15)
        assert system.terminate("worker-0") == -15
        assert "dispatcher-worker stopped" in system.log_tail("worker-0")
        await system.restart("worker-0")
    for name in system.names:
        assert system.log_path(name).stat().st_size > 0
        # every service runs on uvloop (isseimail_shared.cli.serve): asyncio's own loop costs more CPU per message
        assert "started (event loop uvloop.Loop)" in system.log_tail(name, 400), name
    assert system.log_tail("worker-0", 400).count("dispatcher-worker started") == 2  # one log across restarts
    # what a failing test prints: every process's own log lines, the killed gateway's first start included
    report = system.logs_report(400)
    for name in system.names:
        assert f"--- {name}: {system.log_path(name)}" in report
    assert report.count('"service": "gateway"') >= 2
    assert "(nothing logged)" not in report
