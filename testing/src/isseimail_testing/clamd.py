"""A real clamd (Debian's clamav-daemon) on a loopback TCP port and a unix socket, for tests.

The public signature feed cannot be downloaded here, so the database is built by the test run itself:
`sigtool --md5` over the EICAR test file gives a hash signature (`.hdb`, whole-file match) and a body
signature (`.ndb`) matches the EICAR bytes anywhere, including inside a PDF stream that clamd
decompresses. Both names start with `Isseimail.Test.EICAR`. With two signatures clamd is ready in well
under a second; the session fixture starts it once.

    server = ClamdServer(tmp_dir); server.start()
    server.tcp_url   # tcp://127.0.0.1:PORT
    server.unix_url  # unix:///tmp/.../clamd.sock
    server.stop()
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from isseimail_testing.process import free_port

# The EICAR anti-virus test file, assembled here so that this source file itself is no test signature.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
HASH_SIGNATURE = "Isseimail.Test.EICAR-File"
BODY_SIGNATURE = "Isseimail.Test.EICAR-Body"


class ClamdMissing(RuntimeError):
    """clamd or sigtool is not installed (apt-get install clamav-daemon clamav)."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None)
    if found is None:
        raise ClamdMissing(f"{name} not found: apt-get install clamav-daemon clamav (see scripts/debian-packages.txt)")
    return found


def build_database(directory: Path) -> None:
    """test.hdb from `sigtool --md5` over the EICAR file, test.ndb with its bytes as a body signature."""
    directory.mkdir(parents=True, exist_ok=True)
    sample = directory.parent / "eicar.com"
    sample.write_bytes(EICAR)
    line = subprocess.run(
        [_binary("sigtool"), "--md5", str(sample)], check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()
    md5, size, _ = line.split(":", 2)
    (directory / "test.hdb").write_text(f"{md5}:{size}:{HASH_SIGNATURE}\n")
    (directory / "test.ndb").write_text(f"{BODY_SIGNATURE}:0:*:{EICAR.hex()}\n")


class ClamdServer:
    """clamd in the foreground with its own config, database and sockets under `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.socket_path = workdir / "clamd.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    @property
    def tcp_url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}"

    def _write_config(self) -> Path:
        db = self.workdir / "db"
        build_database(db)
        config = self.workdir / "clamd.conf"
        config.write_text(
            "\n".join(
                [
                    "Foreground yes",
                    f"DatabaseDirectory {db}",
                    "TCPAddr 127.0.0.1",
                    f"TCPSocket {self.port}",
                    f"LocalSocket {self.socket_path}",
                    f"LogFile {self.workdir / 'clamd.log'}",
                    "LogTime yes",
                    "StreamMaxLength 25M",
                    "SelfCheck 0",  # the database never changes under a test run
                    "",
                ]
            )
        )
        return config

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"zPING\0")
                return s.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        started = time.monotonic()
        log = open(self.workdir / "clamd.out", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([_binary("clamd"), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = (self.workdir / "clamd.out").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"clamd exited with {self.proc.returncode}: {out}")
            if self.ping():
                self.startup_seconds = time.monotonic() - started
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"clamd not answering PING after {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
