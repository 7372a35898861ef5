"""DKIM signing cost per message: dkimpy's dkim.sign (what the worker used before) vs the dispatcher's
DkimSigner with one RSA key and with RSA + Ed25519 (two signatures).

    uv run python bench/dkim_signing.py              # 200 messages of each size
    uv run python bench/dkim_signing.py --count 50

Messages are stamped from a campaign rendered by mailmerge exactly as the worker stamps them (2 MB of PDF
attachments for the big case, a 5 KB text for the small one) and signed by the dispatcher's DkimSigner
in this thread (the worker runs the same call in a thread pool). Prints ms per message and messages per
second on one core.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import dkim

from isseimail_dispatcher.dkim_keys import generate
from isseimail_dispatcher.dkim_signing import DkimSigner, SigningKey, load_private_key
from isseimail_shared.mailmerge import Recipient, render_campaign


def messages(count: int, big: bool) -> list[bytes]:
    attachments = [(f"資料{i}.pdf", b"%PDF-1.4\n" + os.urandom(1024 * 1024)) for i in range(2)] if big else []
    template = render_campaign(
        "sender@corp.example.jp", "差出人", "ご案内", "本文です。\n" * (1 if big else 500), attachments=attachments
    )
    return [
        template.stamp(
            Recipient(row=i, email=f"user{i}@example.jp", company="株式会社テスト", contact=f"担当 {i}"),
            message_id=f"<{i}@corp.example.jp>",
            bounce_address=f"b{i}@bounce.example.jp",
            list_unsubscribe="<mailto:u@bounce.example.jp>, <https://mail.example.jp/unsubscribe/t>",
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    rsa, ed = generate("rsa-sha256"), generate("ed25519-sha256")
    rsa_key = SigningKey(b"s2026a", b"corp.example.jp", "rsa-sha256", load_private_key("rsa-sha256", rsa.private_key))
    ed_key = SigningKey(
        b"e2026a", b"corp.example.jp", "ed25519-sha256", load_private_key("ed25519-sha256", ed.private_key)
    )

    def dkimpy(message: bytes) -> bytes:
        header: bytes = dkim.sign(message, b"s2026a", b"corp.example.jp", rsa.private_key, linesep=b"\r\n")
        return header + message

    signers: dict[str, Callable[[bytes], bytes]] = {
        "RSA 2048, dkimpy dkim.sign (before)": dkimpy,
        "RSA 2048, DkimSigner": DkimSigner([rsa_key]).sign_sync,
        "RSA + Ed25519, DkimSigner": DkimSigner([rsa_key, ed_key]).sign_sync,
    }
    print("| message | signatures | ms per message | messages/s (one core) |\n|---|---|---:|---:|")
    for label, big in (("2 MB PDF", True), ("5 KB text", False)):
        batch = messages(args.count, big)
        for name, signer in signers.items():
            started = time.perf_counter()
            for message in batch:
                signer(message)
            elapsed = time.perf_counter() - started
            print(f"| {label} | {name} | {elapsed / len(batch) * 1000:.2f} | {len(batch) / elapsed:,.0f} |")


if __name__ == "__main__":
    main()
