"""Render once, stamp per recipient vs building each message with email.message.EmailMessage.

    uv run python bench/render.py                       # 5,000 recipients, 2 MB of PDFs, 200 naive messages
    uv run python bench/render.py --recipients 5000 --naive 5000   # the naive way for all (several minutes)

Both ways produce the same mail: addressee block + body + sender block as text/plain, two PDFs with
Japanese names totalling 2 MB, per-recipient To / Message-ID / Date / List-Unsubscribe. The stamped
path renders the template once (timed separately), then stamps every recipient. The naive path builds
an EmailMessage per recipient and serialises it (base64 of 2 MB each time); it runs for a sample of
recipients (`--naive`) since it is the slow one, and its per-message time is what is compared. Peak
memory is measured with tracemalloc in a second pass of each loop, the stamped one including the
rendering of the template (tracemalloc slows the code it watches, so the timings come from passes
without it). Prints one table.
"""

from __future__ import annotations

import argparse
import email.policy
import gc
import os
import platform
import resource
import time
import tracemalloc
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from isseimail_shared.mailmerge import JST, CampaignTemplate, Recipient, render_campaign

SENDER = ("taro@example.co.jp", "株式会社サンプル 営業部 山田太郎")
SUBJECT = "【ご案内】新製品発表会のお知らせ（2026年12月3日開催）"
BODY = ("いつもお世話になっております。新製品発表会のご案内をお送りいたします。\n" * 40).strip()
UNSUB = "<mailto:unsubscribe@example.co.jp>, <https://mail.example.co.jp/u/one-click>"


def attachments(total: int) -> list[tuple[str, bytes]]:
    half = total // 2
    first = b"%PDF-1.7\n" + os.urandom(half - 9)
    second = b"%PDF-1.7\n" + os.urandom(total - half - 9)
    return [("発表会のご案内（詳細資料）.pdf", first), ("参加申込書.pdf", second)]


def recipients(n: int) -> list[Recipient]:
    return [
        Recipient(
            row=i + 2,
            email=f"user{i}@example{i % 50}.co.jp",
            company=f"株式会社テスト{i}",
            department1="営業本部",
            department2="第一営業部" if i % 3 else "",
            contact="各位" if i % 7 == 0 else f"担当者{i}",
        )
        for i in range(n)
    ]


def naive_message(template: CampaignTemplate, files: list[tuple[str, bytes]], r: Recipient, i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = formataddr((SENDER[1], SENDER[0]))
    msg["Reply-To"] = formataddr((SENDER[1], SENDER[0]))
    msg["To"] = r.email
    msg["Subject"] = SUBJECT
    msg["Date"] = format_datetime(__import__("datetime").datetime.now(JST))
    msg["Message-ID"] = f"<{i}@bench.example>"
    msg["List-Unsubscribe"] = UNSUB
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(template.text_for(r), charset="utf-8", cte="base64")
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes(policy=email.policy.SMTP)


def timed(loop: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    total_bytes = loop()
    return time.perf_counter() - start, total_bytes


def peak(loop: Callable[[], int]) -> int:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    loop()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--naive", type=int, default=200, help="recipients built the naive way")
    parser.add_argument("--attachment-bytes", type=int, default=2_097_152)
    args = parser.parse_args()

    files = attachments(args.attachment_bytes)
    people = recipients(args.recipients)
    render_start = time.perf_counter()
    template = render_campaign(SENDER[0], SENDER[1], SUBJECT, BODY, "utf-8", files)
    template.stamp(people[0], message_id="warm@bench", bounce_address="b@bench")  # builds the byte chunks
    render_seconds = time.perf_counter() - render_start

    def stamp_all() -> int:
        size = 0
        for i, r in enumerate(people):
            size += len(
                template.stamp(r, message_id=f"<{i}@bench.example>", bounce_address=f"b-{i}@b", list_unsubscribe=UNSUB)
            )
        return size

    sample = people[: args.naive]

    def naive_all() -> int:
        return sum(len(naive_message(template, files, r, i)) for i, r in enumerate(sample))

    stamp_seconds, stamp_bytes = timed(stamp_all)
    naive_seconds, naive_bytes = timed(naive_all)

    def render_and_stamp_all() -> int:  # the memory pass counts the template too
        nonlocal template
        template = render_campaign(SENDER[0], SENDER[1], SUBJECT, BODY, "utf-8", files)
        return stamp_all()

    stamp_peak = peak(render_and_stamp_all)
    naive_peak = peak(naive_all)

    per_stamp = stamp_seconds / len(people)
    per_naive = naive_seconds / len(sample)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"attachments: {args.attachment_bytes:,} bytes in {len(files)} PDFs", end="; ")
    print(f"render once: {render_seconds * 1000:.1f} ms")
    print()
    print("| way | messages | total s | ms/message | MB/message | peak traced MB |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| stamp (render once) | {len(people):,} | {stamp_seconds:.2f} | {per_stamp * 1000:.3f} | "
        f"{stamp_bytes / len(people) / 1e6:.2f} | {stamp_peak / 1e6:.1f} |"
    )
    print(
        f"| naive EmailMessage | {len(sample):,} | {naive_seconds:.2f} | {per_naive * 1000:.3f} | "
        f"{naive_bytes / len(sample) / 1e6:.2f} | {naive_peak / 1e6:.1f} |"
    )
    print()
    print(f"speed-up per message: {per_naive / per_stamp:.0f}x; process max RSS {rss_mb:.0f} MB")
    print(f"naive way for all {len(people):,} recipients would take about {per_naive * len(people):.0f} s")


if __name__ == "__main__":
    main()
