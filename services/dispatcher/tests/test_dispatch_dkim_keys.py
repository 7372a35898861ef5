"""DKIM keys: encrypted storage, the /internal/dkim contract, rotation rules, a wrong secret, the CLI, and the
parsers (property-tested)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
import re
import sys
from collections.abc import Callable

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Simple
from hypothesis import given
from hypothesis import strategies as st

from isseimail_dispatcher.app import create_app, create_worker_app
from isseimail_dispatcher.dkim_cli import zone_line
from isseimail_dispatcher.dkim_keys import (
    DkimKeyError,
    KeyBox,
    check_selector,
    normalize_domain,
    txt_value,
)
from isseimail_dispatcher.dkim_signing import OVERSIGNED_HEADERS, Keyring, include_headers, simple_body_hash
from isseimail_dispatcher.dkim_store import StoredKey, txt_public_key
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_testing.dns import DnsServer
from isseimail_testing.process import running_app

from .conftest import DKIM_KEY_SECRET as SECRET

OTHER_SECRET = "pZ4mY0a8mJv1m0m1eJ6bK0pXq3b9l0QmKxRk2cZpW1E="  # another Fernet key for tests only
DOMAIN = "corp.example.jp"
FIRST = f"s{dt.datetime.now(dt.UTC).year}a"  # the default selector of a domain's first RSA key
KEY_FIELDS = {"selector", "algorithm", "state", "public_key", "txt_name", "txt_value"}


async def table_rows(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "dispatcher"})
    try:
        return await conn.fetch("SELECT t::text AS dump, t.* FROM dkim_keys t ORDER BY id")
    finally:
        await conn.close()


async def test_private_keys_are_stored_encrypted(
    dkim_settings: Callable[..., DispatcherSettings], database_url: str
) -> None:
    """The table holds Fernet tokens only; they open with the secret to the keys whose public halves are
    published; no answer carries a private key; a retired key's private half is erased."""
    async with running_app(create_app(dkim_settings())) as api:
        answers = [
            await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "rsa"}),
            await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "ed25519"}),
            await api.post(f"/internal/dkim/{DOMAIN}/rotate", json={"force": True}),
        ]
        assert [a.status_code for a in answers] == [201, 201, 200]
        rows = await table_rows(database_url)
        answers.append(await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "rsa"}))
        answers.append(await api.post(f"/internal/dkim/{DOMAIN}/rotate", json={"algorithm": "rsa", "force": True}))
        answers.append(await api.get(f"/internal/dkim/{DOMAIN}"))
        after = await table_rows(database_url)
    box = KeyBox(SECRET)
    assert [r["algorithm"] for r in rows] == ["rsa-sha256", "ed25519-sha256"]
    for row in rows:
        assert "PRIVATE KEY" not in row["dump"]
        private = box.decrypt(row["private_key"])
        if row["algorithm"] == "rsa-sha256":
            key = serialization.load_pem_private_key(private, password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            assert key.key_size == 2048
            der = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            assert private.decode() not in row["dump"]
            seed = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(private))
            der = seed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert base64.b64encode(der).decode() == row["public_key"]
        for answer in answers:
            assert private.decode() not in answer.text
            assert "PRIVATE" not in answer.text
    states = {r["selector"]: (r["state"], r["private_key"] is None) for r in after}
    assert states[rows[0]["selector"]] == ("retired", True)
    assert sorted(states.values()) == [("active", False), ("active", False), ("retired", True)]


async def test_internal_api_contract(dkim_settings: Callable[..., DispatcherSettings], dns_server: DnsServer) -> None:
    """GET answers exactly the documented shape, unknown domains with no keys; bad input is a Japanese 4xx;
    rotation refuses a key whose record does not resolve, and promotes it once it does."""
    async with running_app(create_app(dkim_settings())) as api:
        unknown = await api.get("/internal/dkim/unknown.example.jp")
        ed_first = await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "ed25519"})
        created = await api.post(f"/internal/dkim/{DOMAIN.upper()}./keys", json={"selector": "s2026a"})
        again = await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "rsa"})
        taken = await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "ed25519", "selector": "s2026a"})
        unpublished = await api.post(f"/internal/dkim/{DOMAIN}/rotate")
        key = created.json()["key"]
        dns_server.zone(key["txt_name"], txt=["v=spf1 -all", key["txt_value"]])  # among other TXT records
        rotated = await api.post(f"/internal/dkim/{DOMAIN}/rotate", json={})
        nothing_next = await api.post(f"/internal/dkim/{DOMAIN}/rotate")
        listing = await api.get(f"/internal/dkim/{DOMAIN}")
        bad = {
            name: await api.get(f"/internal/dkim/{name}")
            for name in ("bad_domain.jp", "a..b.jp", "-x.jp", "localhost", "x" * 300 + ".jp", "a b.jp")
        }
        bad_bodies = [
            await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"algorithm": "dsa"}),
            await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"selector": "Bad_Sel"}),
            await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"selector": "x" * 64}),
            await api.post(f"/internal/dkim/{DOMAIN}/keys", json={"extra": 1}),
            await api.post(
                f"/internal/dkim/{DOMAIN}/keys", content=b"{not json", headers={"content-type": "application/json"}
            ),
            await api.post(f"/internal/dkim/{DOMAIN}/rotate", json={"algorithm": "dsa"}),
        ]
        idn = await api.get("/internal/dkim/例え.jp")
    assert unknown.status_code == 200
    assert unknown.json() == {"domain": "unknown.example.jp", "keys": []}
    assert ed_first.status_code == 409
    assert "RSA" in ed_first.json()["detail"]
    assert created.status_code == 201
    assert created.json()["domain"] == DOMAIN
    assert set(key) == KEY_FIELDS
    assert key["selector"] == "s2026a"
    assert key["state"] == "next"
    assert key["algorithm"] == "rsa-sha256"
    assert key["txt_name"] == f"s2026a._domainkey.{DOMAIN}"
    assert key["txt_value"] == f"v=DKIM1; k=rsa; p={key['public_key']}"
    assert again.status_code == 409
    assert "s2026a" in again.json()["detail"]
    assert taken.status_code == 409
    assert unpublished.status_code == 409
    assert key["txt_name"] in unpublished.json()["detail"]
    assert key["txt_value"] in unpublished.json()["detail"]  # the record to publish
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["activated"] == ["s2026a"]
    assert nothing_next.status_code == 409
    assert listing.json() == {"domain": DOMAIN, "keys": [{**key, "state": "active"}]}
    for name, answer in bad.items():
        assert answer.status_code == 422, name
        assert answer.json()["detail"] == "ドメイン名が正しくありません。"
    for answer in bad_bodies:
        assert answer.status_code == 422, answer.text
        assert re.search(r"[\u3040-\u30ff]", answer.text), answer.text  # a Japanese message, never a 500
    assert idn.json() == {"domain": "xn--r8jz45g.jp", "keys": []}


async def test_wrong_or_missing_secret_fails_clearly(
    dkim_settings: Callable[..., DispatcherSettings], database_url: str
) -> None:
    """Keys made with one secret: a worker started with another refuses to start, naming the setting; the API
    refuses to add keys under another secret or none (503, Japanese), so a keyring never mixes secrets."""
    async with running_app(create_app(dkim_settings())) as api:
        assert (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={})).status_code == 201
        assert (await api.post(f"/internal/dkim/{DOMAIN}/rotate", json={"force": True})).status_code == 200
    wrong = dkim_settings(dkim_key_secret=OTHER_SECRET)
    with pytest.raises(DkimKeyError, match="ISSEIMAIL_DKIM_KEY_SECRET") as started:
        async with running_app(create_worker_app(wrong)):
            pass
    assert SECRET not in str(started.value)
    with pytest.raises(DkimKeyError, match="ISSEIMAIL_DKIM_KEY_SECRET"):
        async with running_app(create_worker_app(dkim_settings(dkim_key_secret=None))):
            pass
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "dispatcher"})
    try:
        with pytest.raises(DkimKeyError, match="復号できません"):
            await Keyring(wrong).signer_for(conn, DOMAIN)
        signer = await Keyring(dkim_settings()).signer_for(conn, DOMAIN)
    finally:
        await conn.close()
    assert signer is not None
    assert [k.selector for k in signer.keys] == [FIRST.encode()]
    async with running_app(create_app(wrong)) as api:
        mixed = await api.post("/internal/dkim/other.example.jp/keys", json={})
        listing = await api.get(f"/internal/dkim/{DOMAIN}")  # reading needs no secret
    async with running_app(create_app(dkim_settings(dkim_key_secret=None))) as api:
        none = await api.post("/internal/dkim/other.example.jp/keys", json={})
    assert mixed.status_code == 503
    assert "ISSEIMAIL_DKIM_KEY_SECRET" in mixed.json()["detail"]
    assert listing.status_code == 200
    assert none.status_code == 503
    assert "ISSEIMAIL_DKIM_KEY_SECRET" in none.json()["detail"]
    with pytest.raises(ValueError, match="ISSEIMAIL_DKIM_KEY_SECRET"):
        KeyBox("not a fernet key")


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "isseimail_dispatcher",
        "dkim",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def publish_printed(dns: DnsServer, output: str) -> str:
    """Publish the record exactly as the CLI printed it (zone-file strings joined); returns its name."""
    match = re.search(r"^(\S+) TXT ((?:\"[^\"]*\" ?)+)$", output, re.MULTILINE)
    assert match, output
    dns.zone(match.group(1), txt=["".join(re.findall(r"\"([^\"]*)\"", match.group(2)))])
    return match.group(1)


async def test_cli_generate_rotate_list(database_url: str, dns_server: DnsServer) -> None:
    """`isseimail-dispatcher dkim` as an operator runs it: the printed record, once published, lets rotate
    promote the key; list shows every key with its record; errors are one clear line, never a traceback."""
    env = {
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_DKIM_KEY_SECRET": SECRET,
        "ISSEIMAIL_DNS_NAMESERVERS": dns_server.nameserver,
        "ISSEIMAIL_LOG_LEVEL": "WARNING",
    }
    code, generated, _ = await run_cli(env, "generate", DOMAIN)
    assert code == 0
    assert f'^{FIRST}._domainkey.{DOMAIN} TXT "v=DKIM1; k=rsa; p=' in "^" + generated.splitlines()[1]
    assert all(len(s) <= 255 for s in re.findall(r"\"([^\"]*)\"", generated))
    code, _, refused = await run_cli(env, "rotate", DOMAIN)
    assert code == 1
    assert f"{FIRST}._domainkey" in refused
    name = publish_printed(dns_server, generated)
    code, rotated, _ = await run_cli(env, "rotate", DOMAIN)
    assert code == 0
    assert f"now signing with {FIRST}" in rotated
    code, ed, _ = await run_cli(env, "generate", DOMAIN, "--algorithm", "ed25519", "--selector", "ed1")
    assert code == 0
    assert f'ed1._domainkey.{DOMAIN} TXT "v=DKIM1; k=ed25519; p=' in ed
    code, listed, _ = await run_cli(env, "list", DOMAIN)
    assert code == 0
    assert listed.splitlines()[0] == DOMAIN
    assert re.search(rf"^  {FIRST}  rsa-sha256  active  \(signing; keep published\)$", listed, re.MULTILINE)
    assert re.search(r"^  ed1  ed25519-sha256  next  \(not signing yet", listed, re.MULTILINE)
    assert f"    {name} TXT " in listed
    code, _, wrong = await run_cli({**env, "ISSEIMAIL_DKIM_KEY_SECRET": OTHER_SECRET}, "generate", "other.example.jp")
    assert code == 2
    assert wrong.startswith("error: ")
    assert "ISSEIMAIL_DKIM_KEY_SECRET" in wrong
    assert "Traceback" not in wrong
    code, _, bad = await run_cli(env, "generate", "not a domain")
    assert code == 2
    assert bad == "error: ドメイン名が正しくありません。\n"
    for output in (generated, rotated, ed, listed):
        assert "PRIVATE" not in output


async def test_cli_reencrypts_under_a_new_secret(
    database_url: str, dkim_settings: Callable[..., DispatcherSettings]
) -> None:
    """Secret change: with `NEW,OLD` the keys made under OLD still sign; `dkim reencrypt` moves every stored
    key to NEW, after which NEW alone opens them and OLD does not; a secret that opens none changes nothing."""
    async with running_app(create_app(dkim_settings())) as api:
        assert (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={})).status_code == 201
        assert (await api.post(f"/internal/dkim/{DOMAIN}/rotate", json={"force": True})).status_code == 200
        assert (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={})).status_code == 201  # a next key too
    before = {r["selector"]: r["private_key"] for r in await table_rows(database_url)}
    env = {"ISSEIMAIL_DATABASE_URL": database_url, "ISSEIMAIL_LOG_LEVEL": "WARNING"}

    code, _, refused = await run_cli({**env, "ISSEIMAIL_DKIM_KEY_SECRET": OTHER_SECRET}, "reencrypt")
    assert code == 2
    assert "復号できません" in refused
    assert {r["selector"]: r["private_key"] for r in await table_rows(database_url)} == before

    both = f"{OTHER_SECRET},{SECRET}"
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "dispatcher"})
    try:
        assert await Keyring(dkim_settings(dkim_key_secret=both)).signer_for(conn, DOMAIN) is not None
        code, out, _ = await run_cli({**env, "ISSEIMAIL_DKIM_KEY_SECRET": both}, "reencrypt")
        assert code == 0
        assert "re-encrypted 2 stored private key(s)" in out
        after = {r["selector"]: r["private_key"] for r in await table_rows(database_url)}
        assert after.keys() == before.keys()
        for selector, token in after.items():
            assert token != before[selector]
            assert KeyBox(OTHER_SECRET).decrypt(token) == KeyBox(SECRET).decrypt(before[selector])
        assert await Keyring(dkim_settings(dkim_key_secret=OTHER_SECRET)).signer_for(conn, DOMAIN) is not None
        with pytest.raises(DkimKeyError, match="復号できません"):
            await Keyring(dkim_settings(dkim_key_secret=SECRET)).signer_for(conn, DOMAIN)
    finally:
        await conn.close()
    with pytest.raises(DkimKeyError, match="ISSEIMAIL_DKIM_KEY_SECRET"):
        KeyBox(f"{OTHER_SECRET},not a key")
    with pytest.raises(DkimKeyError, match="ISSEIMAIL_DKIM_KEY_SECRET"):
        KeyBox(" , ")


async def test_cli_prunes_keys_retired_past_the_retention(
    database_url: str, dkim_settings: Callable[..., DispatcherSettings]
) -> None:
    """`dkim prune` deletes only the keys retired longer ago than the retention setting and prints each
    deleted key's TXT record (to remove from DNS); active, next and recently retired keys stay."""
    async with running_app(create_app(dkim_settings())) as api:
        for _ in range(3):  # three rotations: two retired keys
            assert (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={})).status_code == 201
            assert (await api.post(f"/internal/dkim/{DOMAIN}/rotate", json={"force": True})).status_code == 200
        assert (await api.post(f"/internal/dkim/{DOMAIN}/keys", json={})).status_code == 201
    rows = await table_rows(database_url)
    retired = [r["selector"] for r in rows if r["state"] == "retired"]
    assert len(retired) == 2
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "dispatcher"})
    try:
        await conn.execute(
            "UPDATE dkim_keys SET retired_at = now() - interval '10 days' WHERE selector = $1", retired[0]
        )
        await conn.execute(
            "UPDATE dkim_keys SET retired_at = now() - interval '2 days' WHERE selector = $1", retired[1]
        )
    finally:
        await conn.close()
    env = {
        "ISSEIMAIL_DATABASE_URL": database_url,
        "ISSEIMAIL_DKIM_KEY_SECRET": SECRET,
        "ISSEIMAIL_LOG_LEVEL": "WARNING",
        "ISSEIMAIL_DKIM_RETIRED_RETENTION_DAYS": "7",
    }
    code, listed, _ = await run_cli(env, "list", DOMAIN)
    assert code == 0
    assert "then `dkim prune`" in listed
    code, out, _ = await run_cli(env, "prune")
    assert code == 0
    assert "deleted 1 key(s) retired more than 7 day(s) ago" in out
    assert f'{retired[0]}._domainkey.{DOMAIN} TXT "v=DKIM1; k=rsa; p=' in out
    assert retired[1] not in out
    left = {r["selector"]: r["state"] for r in await table_rows(database_url)}
    assert retired[0] not in left
    assert sorted(left.values()) == ["active", "next", "retired"]
    code, out, _ = await run_cli({**env, "ISSEIMAIL_DKIM_RETIRED_RETENTION_DAYS": "1"}, "prune")
    assert code == 0
    assert f"{retired[1]}._domainkey.{DOMAIN} TXT" in out
    code, out, _ = await run_cli(env, "prune")
    assert out == "deleted 0 key(s) retired more than 7 day(s) ago\n"


# --- pure parts ------------------------------------------------------------------------------------


@given(st.text(max_size=300))
def test_normalize_domain_accepts_only_dns_names(text: str) -> None:
    try:
        name = normalize_domain(text)
    except DkimKeyError:
        return
    assert re.fullmatch(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+", name)
    assert len(name) <= 253
    assert normalize_domain(name) == name


@given(st.text(max_size=80))
def test_check_selector_accepts_only_one_label(text: str) -> None:
    try:
        selector = check_selector(text)
    except DkimKeyError:
        return
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", selector)
    assert len(selector) <= 63


@given(st.text(max_size=500))
def test_txt_public_key_never_raises(text: str) -> None:
    found = txt_public_key(text)
    assert found is None or isinstance(found, str)


@given(st.binary(min_size=32, max_size=300))
def test_txt_value_round_trips(raw: bytes) -> None:
    public = base64.b64encode(raw).decode()
    assert txt_public_key(txt_value("rsa-sha256", public)) == public
    assert txt_public_key("v=DKIM1; k=ed25519; p=" + public[:10] + " \t" + public[10:]) == public


def test_zone_line_splits_long_records() -> None:
    key = StoredKey("example.jp", "s1", "rsa-sha256", "next", "A" * 392)
    line = zone_line(key)
    strings = re.findall(r"\"([^\"]*)\"", line)
    assert line.startswith('s1._domainkey.example.jp TXT "v=DKIM1; k=rsa; p=')
    assert [len(s) for s in strings] == [255, len(key.txt_value) - 255]
    assert "".join(strings) == key.txt_value


def test_present_headers_are_signed_and_singletons_oversigned() -> None:
    headers = [(b"From", b"x"), (b"To", b"y"), (b"X-Isseimail-Bounce", b"z"), (b"List-Unsubscribe", b"u")]
    names = include_headers(headers)
    assert names.count(b"from") == 2
    assert names.count(b"list-unsubscribe") == 2
    assert names.count(b"list-unsubscribe-post") == 1  # absent: signed once, so adding one breaks it
    assert b"x-isseimail-bounce" not in names
    assert set(OVERSIGNED_HEADERS) <= set(names)


@given(st.lists(st.sampled_from([b"\r\n", b"a", b" ", b"\r", b"\n", b"\t"]), max_size=40).map(b"".join))
def test_body_hash_matches_dkimpy_simple_canonicalization(body: bytes) -> None:
    expected = base64.b64encode(hashlib.sha256(Simple.canonicalize_body(body)).digest())
    assert simple_body_hash(body) == expected
    assert simple_body_hash(memoryview(b"head" + body)[4:]) == expected


async def test_broken_configured_key_fails_clearly(dkim_settings: Callable[..., DispatcherSettings]) -> None:
    """A malformed ISSEIMAIL_DKIM_PRIVATE_KEY stops a worker at start (not every message later) and makes the
    read API answer 503 naming the setting, never a 500."""
    broken = dkim_settings(dkim_selector="old", dkim_private_key="-----BEGIN PRIVATE KEY-----\\nnot a key")
    with pytest.raises(DkimKeyError, match="ISSEIMAIL_DKIM_PRIVATE_KEY"):
        async with running_app(create_worker_app(broken)):
            pass
    async with running_app(create_app(broken)) as api:
        answer = await api.get(f"/internal/dkim/{DOMAIN}")
    assert answer.status_code == 503
    assert "ISSEIMAIL_DKIM_PRIVATE_KEY" in answer.json()["detail"]
