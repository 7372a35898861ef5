"""DKIM keys in the dispatcher's schema: generate, rotate, list, and load the signing keys of a domain.

The life of a key: `generate` makes it `next` (its TXT record is to be published; nothing signs with it
yet). `rotate` promotes the `next` key to `active` once its record resolves, and retires the previous
`active` one (its private key is erased; its TXT should stay published for a week so mail already sent
still verifies). So two selectors are live at every step of a rotation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import aiodns
import asyncpg

from isseimail_dispatcher.dkim_keys import (
    Algorithm,
    DkimKeyError,
    KeyBox,
    check_selector,
    generate,
    normalize_domain,
    public_key_of_pem,
    txt_name,
    txt_value,
)
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.contracts.dispatcher import DkimKey

log = logging.getLogger(__name__)

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
STATE_ORDER = {"active": 0, "next": 1, "retired": 2}
SELECTOR_PREFIX: dict[Algorithm, str] = {"rsa-sha256": "s", "ed25519-sha256": "e"}
DNS_TIMEOUT = 5.0


@dataclass(frozen=True)
class StoredKey:
    domain: str
    selector: str
    algorithm: Algorithm
    state: str
    public_key: str
    created_at: dt.datetime | None = None
    activated_at: dt.datetime | None = None
    retired_at: dt.datetime | None = None
    configured: bool = False  # the key of ISSEIMAIL_DKIM_PRIVATE_KEY, not one of the table's

    @property
    def txt_name(self) -> str:
        return txt_name(self.selector, self.domain)

    @property
    def txt_value(self) -> str:
        return txt_value(self.algorithm, self.public_key)

    def contract(self) -> DkimKey:
        """One key as GET /internal/dkim/{domain} answers it (never the private key)."""
        return DkimKey(
            selector=self.selector,
            algorithm=self.algorithm,
            state=self.state,
            public_key=self.public_key,
            txt_name=self.txt_name,
            txt_value=self.txt_value,
        )


def _stored(row: asyncpg.Record) -> StoredKey:
    return StoredKey(
        row["domain"],
        row["selector"],
        row["algorithm"],
        row["state"],
        row["public_key"],
        row["created_at"],
        row["activated_at"],
        row["retired_at"],
    )


def box_of(settings: DispatcherSettings) -> KeyBox:
    if settings.dkim_key_secret is None:
        raise DkimKeyError("ISSEIMAIL_DKIM_KEY_SECRET が設定されていないため、DKIM 鍵を作成・使用できません。", 503)
    return KeyBox(settings.dkim_key_secret.get_secret_value())


def configured_key(settings: DispatcherSettings, domain: str) -> StoredKey | None:
    """The key of ISSEIMAIL_DKIM_SELECTOR / ISSEIMAIL_DKIM_PRIVATE_KEY, when it signs for this domain."""
    if not settings.dkim_enabled() or settings.dkim_selector is None or settings.dkim_private_key is None:
        return None
    if settings.dkim_domain and normalize_domain(settings.dkim_domain) != domain:
        return None
    pem = settings.dkim_private_key.get_secret_value().replace("\\n", "\n").encode()
    return StoredKey(domain, settings.dkim_selector, "rsa-sha256", "active", public_key_of_pem(pem), configured=True)


async def list_keys(conn: Conn, domain: str | None = None) -> list[StoredKey]:
    """The table's keys (of one domain or all), active first, newest first within a state."""
    rows = await conn.fetch(
        "SELECT domain, selector, algorithm, state, public_key, created_at, activated_at, retired_at "
        "FROM dkim_keys WHERE $1::text IS NULL OR domain = $1 ORDER BY domain, created_at DESC, id DESC",
        domain,
    )
    keys = [_stored(r) for r in rows]
    return sorted(keys, key=lambda k: (k.domain, STATE_ORDER[k.state]))


async def published_keys(conn: Conn, settings: DispatcherSettings, domain: str) -> list[StoredKey]:
    """What GET /internal/dkim/{domain} lists: the table's keys, plus the configured key while the table has
    no active RSA key for the domain (then it is the one that signs)."""
    keys = await list_keys(conn, domain)
    if not any(k.state == "active" and k.algorithm == "rsa-sha256" for k in keys):
        configured = configured_key(settings, domain)
        if configured is not None and all(k.selector != configured.selector for k in keys):
            keys.insert(0, configured)
    return keys


async def check_secret(conn: Conn, box: KeyBox) -> None:
    """Raise DkimKeyError when the secret does not open the keys already stored (a wrong or changed secret)."""
    token = await conn.fetchval("SELECT private_key FROM dkim_keys WHERE private_key IS NOT NULL LIMIT 1")
    if token is not None:
        box.decrypt(token)


async def _free_selector(conn: Conn, domain: str, algorithm: Algorithm) -> str:
    used = {r["selector"] for r in await conn.fetch("SELECT selector FROM dkim_keys WHERE domain = $1", domain)}
    stem = f"{SELECTOR_PREFIX[algorithm]}{dt.datetime.now(dt.UTC).year}"
    for letter in "abcdefghijklmnopqrstuvwxyz":
        if stem + letter not in used:
            return stem + letter
    for n in range(1, 10_000):
        if f"{stem}-{n}" not in used:
            return f"{stem}-{n}"
    raise DkimKeyError("空いているセレクタがありません。--selector で指定してください。", 409)


async def generate_key(
    pool: asyncpg.Pool, settings: DispatcherSettings, domain: str, algorithm: Algorithm, selector: str | None = None
) -> StoredKey:
    """A new `next` key for the domain (RSA 2048 or Ed25519); its TXT record is what to publish."""
    domain = normalize_domain(domain)
    box = box_of(settings)
    if selector is not None:
        selector = check_selector(selector)
    # RSA generation takes ~0.1 s of CPU: off the event loop.
    pair = await asyncio.to_thread(generate, algorithm)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('dkim_keys:' || $1))", domain)
        await check_secret(conn, box)
        states = {
            (r["algorithm"], r["state"]): r["selector"]
            for r in await conn.fetch(
                "SELECT algorithm, state, selector FROM dkim_keys WHERE domain = $1 AND state <> 'retired'", domain
            )
        }
        if (algorithm, "next") in states:
            raise DkimKeyError(
                f"{domain} には公開待ちの鍵（セレクタ {states[(algorithm, 'next')]}）がすでにあります。"
                "DNS に公開してから rotate してください。",
                409,
            )
        if algorithm == "ed25519-sha256" and not any(a == "rsa-sha256" for a, _ in states):
            raise DkimKeyError(
                "Ed25519 は RSA 署名に加える2つ目の署名です。先にこのドメインの RSA 鍵を作成してください。", 409
            )
        if selector is None:
            selector = await _free_selector(conn, domain, algorithm)
        elif await conn.fetchval("SELECT 1 FROM dkim_keys WHERE domain = $1 AND selector = $2", domain, selector):
            raise DkimKeyError(f"セレクタ {selector} は {domain} ですでに使われています。", 409)
        row = await conn.fetchrow(
            "INSERT INTO dkim_keys (domain, selector, algorithm, state, public_key, private_key) "
            "VALUES ($1, $2, $3, 'next', $4, $5) "
            "RETURNING domain, selector, algorithm, state, public_key, created_at, activated_at, retired_at",
            domain,
            selector,
            algorithm,
            pair.public_key,
            box.encrypt(pair.private_key),
        )
    assert row is not None
    log.info("dkim key generated: domain=%s selector=%s algorithm=%s", domain, selector, algorithm)
    return _stored(row)


async def rotate(
    pool: asyncpg.Pool,
    settings: DispatcherSettings,
    domain: str,
    algorithm: Algorithm | None = None,
    *,
    check_dns: bool = True,
) -> list[StoredKey]:
    """Promote the domain's `next` key(s) to `active` and retire the keys they replace; returns the new keys.

    With check_dns (the default) a key whose TXT record does not resolve to its public key is not promoted:
    signing with an unpublished key would fail DKIM for every message.
    """
    domain = normalize_domain(domain)
    async with pool.acquire() as conn:
        candidates = [
            k for k in await list_keys(conn, domain) if k.state == "next" and algorithm in (None, k.algorithm)
        ]
    if not candidates:
        raise DkimKeyError(
            f"{domain} に公開待ち（next）の鍵がありません。先に generate で作成し、DNS に公開してください。", 409
        )
    if check_dns:
        problems = await unpublished(settings, candidates)
        if problems:
            raise DkimKeyError(" ".join(problems), 409)
    promoted = {k.algorithm for k in candidates}
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('dkim_keys:' || $1))", domain)
        still_next = await conn.fetchval(
            "SELECT count(*) FROM dkim_keys WHERE domain = $1 AND state = 'next' AND selector = ANY($2::text[])",
            domain,
            [k.selector for k in candidates],
        )
        if still_next != len(candidates):  # a concurrent rotate got there first
            raise DkimKeyError(f"{domain} の鍵は別の操作で切り替えられました。一覧を確認してください。", 409)
        active_rsa = await conn.fetchval(
            "SELECT 1 FROM dkim_keys WHERE domain = $1 AND algorithm = 'rsa-sha256' AND state = 'active'", domain
        )
        if "rsa-sha256" not in promoted and not active_rsa:
            raise DkimKeyError(
                "Ed25519 は RSA 署名に加える2つ目の署名です。"
                "先に RSA 鍵を有効にしてください（rotate --algorithm rsa）。",
                409,
            )
        await conn.execute(
            "UPDATE dkim_keys SET state = 'retired', retired_at = now(), private_key = NULL "
            "WHERE domain = $1 AND state = 'active' AND algorithm = ANY($2::text[])",
            domain,
            sorted(promoted),
        )
        rows = await conn.fetch(
            "UPDATE dkim_keys SET state = 'active', activated_at = now() "
            "WHERE domain = $1 AND state = 'next' AND selector = ANY($2::text[]) "
            "RETURNING domain, selector, algorithm, state, public_key, created_at, activated_at, retired_at",
            domain,
            [k.selector for k in candidates],
        )
    for row in rows:
        log.info("dkim key activated: domain=%s selector=%s algorithm=%s", domain, row["selector"], row["algorithm"])
    return [_stored(r) for r in rows]


async def unpublished(settings: DispatcherSettings, keys: Sequence[StoredKey]) -> list[str]:
    """A Japanese problem per key whose TXT record does not carry its public key (resolved now)."""
    resolver = aiodns.DNSResolver(nameservers=settings.nameserver_strings() or None, timeout=DNS_TIMEOUT, tries=2)
    problems = []
    try:
        for key in keys:
            try:
                result = await resolver.query_dns(key.txt_name, "TXT")
                texts = [bytes(getattr(r.data, "data", b"")).decode("ascii", "replace") for r in result.answer]
            except aiodns.error.DNSError:
                texts = []
            if not any(txt_public_key(t) == key.public_key for t in texts):
                problems.append(
                    f"{key.txt_name} の TXT レコードが見つからないか、公開鍵が一致しません。"
                    f"次の値を公開してから rotate してください: {key.txt_value}"
                )
    finally:
        await resolver.close()
    return problems


def txt_public_key(text: str) -> str | None:
    """The p= value of a DKIM TXT record (whitespace inside it removed), None if it is not one."""
    tags = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    if tags.get("v", "DKIM1") != "DKIM1":
        return None
    return tags.get("p")


async def signing_keys(conn: Conn, box: KeyBox | None, domain: str) -> list[tuple[StoredKey, bytes]]:
    """The active keys of a domain with their private keys decrypted (RSA first: the signature every
    receiver checks; Ed25519 second)."""
    rows = await conn.fetch(
        "SELECT domain, selector, algorithm, state, public_key, created_at, activated_at, retired_at, private_key "
        "FROM dkim_keys WHERE domain = $1 AND state = 'active' ORDER BY algorithm DESC",
        domain,
    )
    if not rows:
        return []
    if box is None:
        raise DkimKeyError("ISSEIMAIL_DKIM_KEY_SECRET が設定されていないため、DKIM 鍵を使用できません。", 503)
    return [(_stored(r), box.decrypt(r["private_key"])) for r in rows]


async def reencrypt_all(pool: asyncpg.Pool, settings: DispatcherSettings) -> int:
    """Every stored private key re-encrypted with the first secret of ISSEIMAIL_DKIM_KEY_SECRET, in one
    transaction: a token no configured secret opens changes nothing and raises DkimKeyError."""
    box = box_of(settings)
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT id, private_key FROM dkim_keys WHERE private_key IS NOT NULL FOR UPDATE")
        updates = [(row["id"], box.reencrypt(row["private_key"])) for row in rows]
        await conn.executemany("UPDATE dkim_keys SET private_key = $2 WHERE id = $1", updates)
    log.info("dkim keys re-encrypted with the first secret: %d", len(updates))
    return len(updates)


async def prune_retired(pool: asyncpg.Pool, settings: DispatcherSettings) -> list[StoredKey]:
    """Delete the keys retired longer ago than ISSEIMAIL_DKIM_RETIRED_RETENTION_DAYS; returns them (their TXT
    records may now be removed from DNS: no mail that still needs them is left in anybody's queue)."""
    rows = await pool.fetch(
        "DELETE FROM dkim_keys WHERE state = 'retired' AND retired_at < now() - make_interval(secs => $1) "
        "RETURNING domain, selector, algorithm, state, public_key, created_at, activated_at, retired_at",
        settings.dkim_retired_retention_days * 86_400.0,
    )
    keys = sorted((_stored(r) for r in rows), key=lambda k: (k.domain, k.selector))
    for key in keys:
        log.info("dkim key deleted after retention: domain=%s selector=%s", key.domain, key.selector)
    return keys
