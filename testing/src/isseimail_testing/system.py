"""The whole system as separate processes on loopback ports, for end-to-end and fault tests.

    system = SystemProcesses(database_url=..., amqp_url=..., smtp_relay=("127.0.0.1", smtp.port),
                             dns_nameserver=dns.nameserver, log_dir=tmp_path / "logs", workers=2)
    await system.start()          # every process answers /readyz
    system.kill("worker-0")       # SIGKILL
    await system.restart("worker-0")
    await system.stop()           # SIGTERM all, then SIGKILL what is left

Each service runs as `python -m <module>` (the dispatcher's workers as `... worker`) with the same
environment `make run` gives them, pointed at the test's database, vhost, SMTP relay and DNS server.
The outbox relay runs inside each service process (runtime.py); dispatcher workers write to the
dispatcher's outbox and the dispatcher (serve) process relays it. Killing "the relay" of a service's
outbox therefore means killing that service's process.

`ApiClient` drives the gateway's JSON API the way an applicant and an administrator do.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from isseimail_testing.fixtures import CREDENTIALS_KEY
from isseimail_testing.process import ServiceProcess, free_port
from isseimail_testing.services import Service, packages, service
from isseimail_testing.smtp import CaptureServer

ADMIN_EMAIL = "admin@corp.example.jp"
# Test-only values; real deployments set their own (see the README settings table).
ADMIN_PASSWORD = "admin-password-for-tests"  # noqa: S105
VERP_SECRET = "test-verp-secret"  # noqa: S105
SESSION_SECRET = "system-test-session-secret"  # noqa: S105
USER_ID = re.compile(r"ユーザーID は \[(\d{6})\] です。")
PASSWORD = re.compile(r"パスワード は \[([^\]\s]+)\] です。")


def today(timezone: str = "Asia/Tokyo") -> dt.date:
    """A pass's day of use is today in the services' time zone (they run on the real clock)."""
    return dt.datetime.now(ZoneInfo(timezone)).date()


class SystemProcesses:
    """pass-service, list-validator, composer, dispatcher (serve), N dispatcher workers, notifier, gateway.

    `env` adds or overrides variables for every process; `service_env` per process name ("worker" applies
    to every worker, "worker-1" to one). Ports are chosen free once and kept across restarts.
    """

    def __init__(
        self,
        *,
        database_url: str,
        amqp_url: str,
        smtp_relay: tuple[str, int],
        dns_nameserver: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        workers: int = 1,
        admin: tuple[str, str] = (ADMIN_EMAIL, ADMIN_PASSWORD),
    ) -> None:
        self.log_dir = log_dir
        self.admin = admin
        log_dir.mkdir(parents=True, exist_ok=True)
        # One process per service package (services.toml); the dispatcher's worker process `workers` times.
        singles = packages()
        worker = service("dispatcher-worker")
        self.ports: dict[str, int] = {s.name: free_port() for s in singles}
        self.ports.update({f"worker-{i}": free_port() for i in range(workers)})
        self.bounce_port = free_port()
        url = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.urls = url
        common = {
            "ISSEIMAIL_DATABASE_URL": database_url,
            "ISSEIMAIL_AMQP_URL": amqp_url,
            "ISSEIMAIL_SMTP_RELAY": f"smtp://{smtp_relay[0]}:{smtp_relay[1]}",
            "ISSEIMAIL_DNS_NAMESERVERS": dns_nameserver,
            "ISSEIMAIL_CREDENTIALS_KEY": CREDENTIALS_KEY,
            "ISSEIMAIL_VERP_SECRET": VERP_SECRET,
            "ISSEIMAIL_SESSION_SECRET": SESSION_SECRET,
            "ISSEIMAIL_OUTBOX_POLL_SECONDS": "0.2",
            "ISSEIMAIL_SHUTDOWN_GRACE_SECONDS": "2",
            "ISSEIMAIL_LOG_LEVEL": "INFO",
            # Every URL a service may call, so each process has the same picture of the system.
            "ISSEIMAIL_PASS_URL": url["pass-service"],
            "ISSEIMAIL_LIST_VALIDATOR_URL": url["list-validator"],
            "ISSEIMAIL_COMPOSER_URL": url["composer"],
            "ISSEIMAIL_DISPATCHER_URL": url["dispatcher"],
            "ISSEIMAIL_NOTIFIER_URL": url["notifier"],
            "ISSEIMAIL_PUBLIC_URL": url["gateway"],
            "ISSEIMAIL_LOGIN_URL": url["gateway"] + "/login",
            "ISSEIMAIL_ADMIN_EMAIL": admin[0],
            "ISSEIMAIL_ADMIN_PASSWORD": admin[1],
            "ISSEIMAIL_BOUNCE_LISTEN_HOST": "127.0.0.1",
            "ISSEIMAIL_BOUNCE_LISTEN_PORT": str(self.bounce_port),
            # Short waits so that tests do not sit idle (each is a real setting with a production default).
            "ISSEIMAIL_RESULT_FLUSH_SECONDS": "0.05",
            "ISSEIMAIL_SCHEDULER_SECONDS": "0.2",
            "ISSEIMAIL_RETRY_BASE_SECONDS": "0.2",
            # Most system tests send text-only mail; the browser test keeps the (必須) default.
            "ISSEIMAIL_ATTACHMENTS_REQUIRED": "false",
            **(env or {}),
        }
        per_service = dict(service_env or {})
        self.processes: dict[str, ServiceProcess] = {}
        for entry in singles:
            own = {**common, entry.port_env: str(self.ports[entry.name]), **per_service.get(entry.name, {})}
            self.processes[entry.name] = self._process(entry, own, entry.name)
        for i in range(workers):
            name = f"worker-{i}"
            own = {
                **common,
                worker.port_env: str(self.ports[name]),
                **per_service.get("worker", {}),
                **per_service.get(name, {}),
            }
            self.processes[name] = self._process(worker, own, name)

    def _process(self, entry: Service, own: dict[str, str], name: str) -> ServiceProcess:
        log = self.log_dir / f"{name}.log"
        proc = ServiceProcess(entry.module, own, self.ports[name], log, args=entry.args)
        # Only the settings given here: an ISSEIMAIL_* variable in the caller's shell must not leak in.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ISSEIMAIL_")}
        proc.env = {**inherited, **own}
        return proc

    # --- what the tests read ----------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.processes)

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    @property
    def bounce_listener(self) -> tuple[str, int]:
        """The notifier's bounce SMTP listener (where DSNs to VERP addresses go)."""
        return ("127.0.0.1", self.bounce_port)

    def url(self, name: str) -> str:
        return self.urls[name]

    def pids(self) -> dict[str, int]:
        """The pid of every running process, for RSS/CPU sampling."""
        return {name: p.pid for name, p in self.processes.items() if p.pid is not None}

    def log_path(self, name: str) -> Path:
        path = self.processes[name].log_path
        assert path is not None
        return path

    def log_paths(self) -> dict[str, Path]:
        return {name: self.log_path(name) for name in self.processes}

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_path(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self, timeout: float = 90.0) -> None:
        """Start every process, then wait until each answers /readyz 200 (a failure says which and why).

        Workers after the first start once it is ready: RabbitMQ 3.10 crashes the connection of a consumer
        of a quorum queue that another connection is still creating (`{badmatch,{error,noproc}}`, fixed in
        RabbitMQ 4.1 by rabbitmq-server#13625), so two workers declaring dispatcher.batches at once made
        one of them fail its start now and then.
        """
        later = [name for name in self.processes if name.startswith("worker-") and name != "worker-0"]
        first = [name for name in self.processes if name not in later]
        try:
            for group in (first, later):
                for name in group:
                    self.processes[name].start()
                await asyncio.gather(*(self._wait_ready(name, timeout) for name in group))
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self, name: str, timeout: float) -> None:
        try:
            await self.processes[name].wait_ready(timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{name}: {exc}\n--- {name}.log (tail) ---\n{self.log_tail(name)}") from None

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs (nothing flushed, in-flight work lost to the broker's redelivery)."""
        self.processes[name].kill()

    def terminate(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL after `timeout`); returns the exit code (-15 after a graceful stop:
        uvicorn re-raises the signal once it has shut down; -9 when it had to be killed)."""
        return self.processes[name].terminate(timeout)

    async def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start the process again (same environment and port; killed first if still running), wait ready."""
        proc = self.processes[name]
        if proc.running():
            proc.kill()
        proc.start()
        await self._wait_ready(name, timeout)

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every process at once, wait up to `grace` seconds, SIGKILL what is left."""
        for proc in self.processes.values():
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            if proc.proc is None:
                continue
            while proc.proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - a child's exit has no event
                await asyncio.sleep(0.05)
            if proc.proc.poll() is None:
                proc.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.proc.wait(10)

    async def __aenter__(self) -> SystemProcesses:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- the gateway's JSON API -----------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    user_id: str
    password: str
    use_date: dt.date


class ApiError(AssertionError):
    """An unexpected answer from the gateway, with its status and body."""

    def __init__(self, what: str, response: httpx.Response) -> None:
        super().__init__(f"{what}: {response.status_code} {response.text[:2000]}")
        self.response = response


def _expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise ApiError(what, response)
    return response.json() if response.content else None


class ApiClient:
    """One user of the gateway's JSON API (an applicant or an administrator); keeps its session cookie."""

    def __init__(self, gateway_url: str, timeout: float = 60.0) -> None:
        self.http = httpx.AsyncClient(base_url=gateway_url, timeout=timeout)

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- application and approval ------------------------------------------------------------------
    async def apply(
        self,
        applicant_email: str,
        *,
        applicant_name: str = "山田 太郎",
        department: str = "営業部",
        purpose: str = "新製品のご案内",
        use_date: dt.date | None = None,
    ) -> str:
        """Apply for a 1DayPass; returns the application id."""
        body = {
            "applicant_name": applicant_name,
            "applicant_email": applicant_email,
            "department": department,
            "use_date": (use_date or today()).isoformat(),
            "purpose": purpose,
        }
        return str(_expect(await self.http.post("/api/v1/applications", json=body), 201, "apply")["application_id"])

    async def admin_login(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
        r = await self.http.post("/api/v1/admin/session", json={"email": email, "password": password})
        _expect(r, 200, "admin login")

    async def approve(self, application_id: str) -> dict[str, Any]:
        r = await self.http.post(f"/api/v1/admin/applications/{application_id}/approve")
        result: dict[str, Any] = _expect(r, 201, "approve")
        return result

    # --- the applicant -----------------------------------------------------------------------------
    async def login(self, credentials: Credentials) -> httpx.Response:
        """POST /api/v1/session; returns the response (a refused login is a result tests check)."""
        return await self.http.post(
            "/api/v1/session",
            json={
                "user_id": credentials.user_id,
                "password": credentials.password,
                "use_date": credentials.use_date.isoformat(),
            },
        )

    async def upload_list(self, csv: bytes, filename: str = "送信先.csv") -> str:
        r = await self.http.post("/api/v1/lists", files={"file": (filename, csv, "text/csv")})
        return str(_expect(r, 202, "upload list")["list_id"])

    async def list_status(self, list_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _expect(await self.http.get(f"/api/v1/lists/{list_id}"), 200, "list status")
        return result

    async def wait_list(self, list_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll until the list is no longer `validating`; returns its final status body."""
        deadline = time.monotonic() + timeout
        while True:
            body = await self.list_status(list_id)
            if body["status"] != "validating":
                return body
            if time.monotonic() > deadline:
                raise TimeoutError(f"list {list_id} still validating after {timeout}s: {body}")
            await asyncio.sleep(0.1)

    async def create_campaign(
        self,
        list_id: str,
        *,
        sender_email: str,
        sender_name: str,
        subject: str,
        body: str,
        attachments: Sequence[tuple[str, bytes]] = (),
        charset: str = "utf-8",
    ) -> str:
        form = {
            "list_id": list_id,
            "sender_email": sender_email,
            "sender_name": sender_name,
            "subject": subject,
            "body": body,
            "charset": charset,
        }
        files = [("attachments", (name, data, "application/pdf")) for name, data in attachments]
        r = await self.http.post("/api/v1/campaigns", data=form, files=files or None)
        return str(_expect(r, 201, "create campaign")["campaign_id"])

    async def preview(self, campaign_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _expect(
            await self.http.get(f"/api/v1/campaigns/{campaign_id}/preview"), 200, "preview"
        )
        return result

    async def send(self, campaign_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _expect(await self.http.post(f"/api/v1/campaigns/{campaign_id}/send"), 202, "send")
        return result

    async def progress(self, campaign_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/v1/campaigns/{campaign_id}")
        result: dict[str, Any] = _expect(r, 200, "progress")
        return result

    async def wait_completed(self, campaign_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """Poll the progress until `completed`; returns the last progress body."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                body = await self.progress(campaign_id)
            except (httpx.HTTPError, ApiError) as exc:  # a restarting service answers 503 for a while
                last = exc
            else:
                if body.get("status") == "completed":
                    return body
                last = body
            await asyncio.sleep(0.25)
        raise TimeoutError(f"campaign {campaign_id} not completed after {timeout}s; last answer: {last}")


async def credentials_from_mail(smtp: CaptureServer, address: str, timeout: float = 60.0) -> Credentials:
    """The user ID and password from the newest credentials mail to `address` (what the notifier sent)."""
    deadline = time.monotonic() + timeout
    while True:
        for captured in reversed(smtp.to(address)):
            part = captured.message().get_body(preferencelist=("plain",))
            if part is None:
                continue
            text = part.get_content()
            user_id, password = USER_ID.search(text), PASSWORD.search(text)
            if user_id and password:
                return Credentials(user_id.group(1), password.group(1), today())
        if time.monotonic() > deadline:
            raise TimeoutError(f"no credentials mail to {address} after {timeout}s")
        await asyncio.sleep(0.1)


async def new_pass(
    system: SystemProcesses, smtp: CaptureServer, applicant_email: str, **application: Any
) -> tuple[ApiClient, Credentials]:
    """Apply, let the administrator approve, read the credentials mail, log in: a logged-in applicant."""
    async with ApiClient(system.gateway_url) as admin:
        await admin.admin_login(*system.admin)
        applicant = ApiClient(system.gateway_url)
        application_id = await applicant.apply(applicant_email, **application)
        await admin.approve(application_id)
    credentials = await credentials_from_mail(smtp, applicant_email)
    _expect(await applicant.login(credentials), 200, "login")
    return applicant, credentials
