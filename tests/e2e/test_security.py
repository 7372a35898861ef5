"""Issue 18: the attacks of an outside probe, replayed against the whole running system (real processes,
database, broker, SMTP, DNS). Each assertion is what the attack gets now; before the fixes each got in."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from tests.e2e.support import wait_until

from isseimail_shared.errors import ErrorBody
from isseimail_testing.headers import API_CLIENT_HEADERS
from isseimail_testing.smtp import CaptureServer
from isseimail_testing.system import ADMIN_EMAIL, ADMIN_PASSWORD, ApiClient, SystemProcesses, new_pass

pytestmark = pytest.mark.timeout(300)

INTERNAL = ["pass-service", "list-validator", "composer", "dispatcher", "notifier"]
SENDER = "taro@corp.example.jp"
ROWS = "メールアドレス,会社名,部署名1,部署名2,ご担当者名\r\nhanako@example.co.jp,株式会社秘密,営業部,,佐藤花子\r\n"


def _forwarded(address: str) -> dict[str, str]:
    return {**API_CLIENT_HEADERS, "X-Forwarded-For": address}


@pytest.mark.system(
    service_env={
        "gateway": {"ISSEIMAIL_TRUSTED_PROXIES": "127.0.0.1/32"},  # tests speak for several clients via XFF
        "pass-service": {"ISSEIMAIL_LOCKOUT_BASE_DELAY_SECONDS": "60"},  # no delay runs out on a loaded machine
    }
)
async def test_internals_sessions_lockout_and_cross_site(system: SystemProcesses, smtp_server: CaptureServer) -> None:
    """#7 internal APIs need the service token; #3 logged-out cookies are dead; #1 an attack on the admin's
    e-mail from other clients leaves the admin's login working; #4 a cross-site approve is refused."""
    async with httpx.AsyncClient(timeout=30) as raw:
        for name in INTERNAL:  # any process on the network, no credential
            base = system.url(name)
            assert (await raw.get(f"{base}/internal/passes")).status_code == 401, name
            assert (await raw.get(f"{base}/readyz")).status_code == 200, name
            assert (await raw.get(f"{base}/metrics")).status_code == 200, name
        leaked = await raw.get(
            f"{system.url('pass-service')}/internal/passes", headers={"X-Isseimail-Internal-Token": "x"}
        )
        assert leaked.status_code == 401
        assert "applicant_email" not in leaked.text

    # 1: five wrong passwords (and more) for the administrator's e-mail from other intranet clients
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as attacker:
        answers = []
        for n in range(9):  # six from one address, three from another
            r = await attacker.post(
                "/api/v1/admin/session",
                json={"email": ADMIN_EMAIL, "password": f"guess-{n}"},
                headers=_forwarded("10.66.0.1" if n < 6 else "10.66.0.2"),
            )
            answers.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
        assert answers[:5] == [401] * 5
        assert answers[5] == 429  # the guessing client is slowed down ...
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30, headers=_forwarded("10.1.2.3")) as admin:
        r = await admin.post("/api/v1/admin/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text  # ... the administrator is not locked out
        admin_cookie = admin.cookies["isseimail_admin"]

        # 4: with the admin's cookie, a page of another site posts the approval
        applicant = ApiClient(system.gateway_url)
        async with applicant:
            application_id = await applicant.apply(SENDER)
        approve = f"/api/v1/admin/applications/{application_id}/approve"
        for hostile in (
            {"Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},
        ):
            r = await admin.post(approve, headers=hostile)
            assert r.status_code == 403, hostile
        async with httpx.AsyncClient(base_url=system.gateway_url, cookies={"isseimail_admin": admin_cookie}) as bare:
            assert (await bare.post(approve)).status_code == 403  # a plain cross-site form: no custom header
        pending = await admin.get("/api/v1/admin/applications", params={"state": "pending"})
        assert [a["application_id"] for a in pending.json()["items"]] == [int(application_id)]  # nothing issued
        host = httpx.URL(system.gateway_url).netloc.decode()
        r = await admin.post(approve, headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 201, r.text  # the same request from the site itself

        # 3: the administrator logs out; a copy of the old cookie opens nothing any more
        assert (await admin.delete("/api/v1/admin/session")).status_code == 200
    async with httpx.AsyncClient(base_url=system.gateway_url, cookies={"isseimail_admin": admin_cookie}) as replay:
        assert (await replay.get("/api/v1/admin/applications")).status_code == 401

    applicant, _ = await new_pass(system, smtp_server, "jiro@corp.example.jp")
    async with applicant:
        pass_cookie = applicant.http.cookies["isseimail_session"]
        assert (await applicant.http.delete("/api/v1/session")).status_code == 200
    async with httpx.AsyncClient(base_url=system.gateway_url, cookies={"isseimail_session": pass_cookie}) as replay:
        assert (await replay.get("/api/v1/session")).status_code == 401
        assert (
            await replay.post("/api/v1/lists", headers=API_CLIENT_HEADERS, files={"file": ("a.csv", b"x")})
        ).status_code == 401


async def test_ownership_and_hostile_input(system: SystemProcesses, smtp_server: CaptureServer) -> None:
    """#2 another pass's list, campaign and progress are "not found"; #5 path tricks are 404 without reaching
    other routes; #6 a long multipart boundary is a Japanese 422; #8 a sender name with an address is refused,
    an aborted upload is no ERROR, the OpenAPI documents the real 422 body."""
    owner, _ = await new_pass(system, smtp_server, "hanako@corp.example.jp")
    intruder, _ = await new_pass(system, smtp_server, SENDER)
    async with owner, intruder:
        list_id = await owner.upload_list(ROWS.encode())
        status = await owner.wait_list(list_id)
        assert status["status"] == "valid", status
        # 2: the intruder names the owner's list
        form = {"list_id": list_id, "sender_email": SENDER, "sender_name": "太郎", "subject": "件名", "body": "本文"}
        stolen = await intruder.http.post("/api/v1/campaigns", data=form)
        assert stolen.status_code == 422, stolen.text
        assert "list_id" in stolen.json()["errors"]
        assert "株式会社秘密" not in stolen.text
        assert (await intruder.http.get(f"/api/v1/lists/{list_id}")).status_code == 404
        assert (await intruder.http.get(f"/api/v1/lists/{list_id}/errors.csv")).status_code == 404
        own = await owner.create_campaign(
            list_id, sender_email="hanako@corp.example.jp", sender_name="花子", subject="s", body="b"
        )
        for path in (f"/api/v1/campaigns/{own}", f"/api/v1/campaigns/{own}/preview", f"/api/v1/campaigns/{own}/draft"):
            r = await intruder.http.get(path)
            assert r.status_code == 404, path
            assert "佐藤花子" not in r.text

        # 8: a sender name that carries an address
        form = {**form, "list_id": list_id, "sender_name": '"a" <evil@attacker.example>, b'}
        refused = await owner.http.post("/api/v1/campaigns", data={**form, "sender_email": "hanako@corp.example.jp"})
        assert refused.status_code == 422
        assert "送信者名称" in refused.json()["errors"]["sender_name"]

        # 5: ids with control characters, query strings or other routes' names
        for raw in ("%00", "%0d%0a", "%3Fx=1", "limits", "..%2F..%2Finternal", "%C0", str(uuid.uuid4()) + "%00"):
            r = await owner.http.get(f"/api/v1/lists/{raw}")
            assert r.status_code == 404, (raw, r.text)
            assert r.json()["detail"]
        for raw in ("%00", "1%3Fx", "abc"):
            r = await owner.http.get(f"/api/v1/campaigns/{raw}")
            assert r.status_code == 404, raw

        # 6: a multipart boundary of 300 characters, API and HTML upload
        boundary = "b" * 300
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
            f"{ROWS}\r\n--{boundary}--\r\n"
        ).encode()
        r = await owner.http.post(
            "/api/v1/lists", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        assert r.status_code == 422, r.text
        assert "boundary" in r.json()["detail"]
        page = await owner.http.get("/lists/new")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = await owner.http.post(
            f"/lists?csrf_token={token}",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert 400 <= r.status_code < 500, r.status_code
        assert "boundary" in r.text

        # 8: an upload the client aborts half-way is the client's doing, not an ERROR of the gateway
        host, port = system.gateway_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        cookie = owner.http.cookies["isseimail_session"]
        writer.write(
            (
                f"POST /api/v1/lists HTTP/1.1\r\nHost: {host}\r\nCookie: isseimail_session={cookie}\r\n"
                "X-Isseimail-CSRF: 1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                "Content-Length: 5000000\r\n\r\n"
                '--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
            ).encode()
            + b"a@b.jp,,,,x\r\n" * 1000
        )
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()
        del reader
        gateway_log = system.log_path("gateway")
        await wait_until(
            lambda: "client disconnected" in gateway_log.read_text(errors="replace"), 60, "the disconnect logged"
        )
    log = system.log_path("gateway").read_text(errors="replace")
    assert "ClientDisconnect" not in log
    assert "unhandled error" not in log

    async with httpx.AsyncClient(timeout=30) as http:
        spec = (await http.get(f"{system.gateway_url}/api/v1/openapi.json")).json()
    body_422 = spec["components"]["schemas"]["HTTPValidationError"]
    assert set(body_422["properties"]) == set(ErrorBody.model_fields) == {"detail", "errors", "code"}
    assert body_422["required"] == ["detail"]
