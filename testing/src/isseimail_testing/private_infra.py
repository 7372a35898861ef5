"""A PostgreSQL cluster and a RabbitMQ node of a test's own, on their own loopback ports, that the test may
stop and restart: restarting the machine's shared servers would break every other test running at the time.

PostgreSQL: `initdb` from the newest /usr/lib/postgresql/*/bin into a temporary directory, trust auth,
listening on 127.0.0.1 only (run as the `postgres` user when we are root, since initdb refuses root).
RabbitMQ: `rabbitmq-server` with its own node name, AMQP and distribution ports, data and log directories,
config file and cookie (HOME), and no plugins. The node name stays the same across restarts, so quorum
queues and their messages survive a restart as they would in production.

Each start, stop and restart records its wall time in `timings` (seconds), so tests can report it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Self

from isseimail_testing.infra import InfrastructureMissing
from isseimail_testing.process import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise InfrastructureMissing("initdb not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return Path(found[-1]).parent


def _checked(
    argv: list[str], what: str, cwd: Path, timeout: float, *, user: str | None = None, env: dict[str, str] | None = None
) -> str:
    """Run one of a server's own tools; its output, or an error carrying what the tool said."""
    done = subprocess.run(
        argv, user=user, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


class _PrivateServer:
    """A server of the test's own: started on entering (cleaned up if that fails), closed on leaving; `timings`
    records how long each start, stop and restart took."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def _timed(self, what: str) -> Any:
        started = time.monotonic()
        yield
        self.timings[what] = time.monotonic() - started

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PrivatePostgres(_PrivateServer):
    """A throwaway PostgreSQL cluster; `url` names its `postgres` database as the `postgres` superuser."""

    def __init__(self) -> None:
        super().__init__()
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="isseimail-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        # initdb and postgres refuse to run as root; the Debian package's user owns the cluster then.
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            pw = pwd.getpwnam(self._user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        _checked([str(self.bin / args[0]), *args[1:]], args[0], self.dir, timeout, user=self._user)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)

    def start(self) -> None:
        with self._timed("start"):
            if not self.data.exists():
                self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
                settings = {
                    "port": str(self.port),
                    "listen_addresses": "'127.0.0.1'",
                    "unix_socket_directories": f"'{self.dir}'",
                    "max_connections": "300",
                    # Committed rows must survive a restart of the server, not of the machine.
                    "fsync": "off",
                    "full_page_writes": "off",
                }
                with (self.data / "postgresql.conf").open("a") as conf:
                    conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
            self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` rolls back open transactions and checkpoints; `immediate` is a crash (recovery on start)."""
        with self._timed(f"stop-{mode}"):
            self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        with self._timed(f"restart-{mode}"):
            self.stop(mode)
            self._pg_ctl("start")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRabbitMQ(_PrivateServer):
    """A throwaway RabbitMQ node; `url` names its default vhost as guest (allowed from loopback).
    management=True also enables rabbitmq_management on a loopback port (`management_url`; ~3 s more to boot)."""

    def __init__(self, *, management: bool = False) -> None:
        super().__init__()
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise InfrastructureMissing(
                f"rabbitmq-server not found in {RABBITMQ_BIN} (apt-get install rabbitmq-server)"
            )
        self.port = free_port()
        self.dist_port = free_port()
        self.management_port = free_port() if management else None
        self.node = f"isseimail-{uuid.uuid4().hex[:10]}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="isseimail-rabbit-"))
        self.pid_file = self.dir / "rabbit.pid"
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            # a test machine's disk is often nearly full of other tests' data; do not block publishers
            "disk_free_limit.absolute = 1MB\n"
            + (f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n" if management else "")
        )
        (self.dir / "rabbitmq-env.conf").write_text("")  # not the machine's: it names the shared node
        (self.dir / "enabled_plugins").write_text("[rabbitmq_management].\n" if management else "[].\n")
        self.env = {
            **os.environ,
            "HOME": str(self.dir),  # its own Erlang cookie, shared by the server and our rabbitmqctl
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def management_url(self) -> str:
        if self.management_port is None:
            raise RuntimeError("this node was started without the management plugin")
        return f"http://guest:guest@127.0.0.1:{self.management_port}/"

    def ctl(self, *args: str, timeout: float = 90) -> str:
        argv = [str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args]
        return _checked(argv, f"rabbitmqctl {' '.join(args)}", self.dir, timeout, env=self.env)

    def _boot(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        log = (self.dir / "server.out").open("ab")
        self.proc = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            start_new_session=True,  # a Ctrl-C of pytest must not reach it before we stop it properly
        )
        log.close()
        try:
            self.ctl("wait", str(self.pid_file), "--timeout", "90", timeout=100)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; see {self.dir / 'log'}") from exc

    def start(self) -> None:
        with self._timed("start"):
            self._boot()

    def stop(self) -> None:
        with self._timed("stop"):
            self.ctl("stop", str(self.pid_file))
            if self.proc is not None:
                self.proc.wait(30)

    def restart(self) -> None:
        """The whole node stopped and started again (connections drop, durable messages survive)."""
        with self._timed("restart"):
            self.stop()
            self._boot()

    def restart_app(self) -> None:
        """Only the rabbit application stopped and started in the running Erlang VM (faster)."""
        with self._timed("restart-app"):
            self.ctl("stop_app")
            self.ctl("start_app")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.ctl("stop", str(self.pid_file), timeout=30)
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)
