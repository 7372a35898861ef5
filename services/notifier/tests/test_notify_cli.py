"""`isseimail-notifier parse-bounce FILE...`: one JSON object per file, same parser as the listener."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BOUNCES = Path(__file__).parent / "bounces"


def test_parse_bounce_prints_one_json_object_per_file(tmp_path: Path) -> None:
    """Each file gives a JSON line with the documented keys; an unreadable file is reported, exit status 1."""
    files = [BOUNCES / "postfix-userunknown.eml", BOUNCES / "vacation-autoreply.eml", tmp_path / "missing.eml"]
    done = subprocess.run(
        [sys.executable, "-m", "isseimail_notifier", "parse-bounce", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3
    first, second, missing = lines
    assert {"file", "is_bounce", "recipient", "status", "reason", "hard", "action", "diagnostic"} <= first.keys()
    assert first["action"] == "failed"
    assert first["file"] == str(files[0])
    assert (first["is_bounce"], first["recipient"], first["status"], first["reason"], first["hard"]) == (
        True,
        "nobody-here@example.co.jp",
        "5.1.1",
        "userunknown",
        True,
    )
    assert (second["is_bounce"], second["reason"]) == (False, "vacation")
    assert missing["file"] == str(files[2])
    assert "error" in missing


def test_parse_bounce_needs_no_service_settings(tmp_path: Path) -> None:
    """The operator's command runs without ISSEIMAIL_CREDENTIALS_KEY or any server, exit status 0."""
    sample = tmp_path / "junk.eml"
    sample.write_bytes(b"\x00\xffnot mail at all")
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "isseimail_notifier", "parse-bounce", str(sample)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["is_bounce"] is False


def test_parse_bounce_summary_counts_reasons(tmp_path: Path) -> None:
    """--summary prints one line per reason (bounce or not) with its count, and the total, instead of JSON."""
    files = [
        BOUNCES / "postfix-userunknown.eml",
        BOUNCES / "qmail-userunknown.eml",
        BOUNCES / "postfix-mailboxfull.eml",
        BOUNCES / "vacation-autoreply.eml",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "isseimail_notifier", "parse-bounce", "--summary", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {tuple(line.split()[:2]): line.split()[-1] for line in done.stdout.splitlines()[1:]}
    assert rows[("userunknown", "yes")] == "2"
    assert rows[("mailboxfull", "yes")] == "1"
    assert rows[("vacation", "no")] == "1"
    assert done.stdout.splitlines()[-1].split() == ["total", "4"]
