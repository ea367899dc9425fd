"""THREATS.md "Tokens and sign-in": every hostile token answers 401."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwe, jwt

from storage.catalog.records import AuditFilter
from tests.conftest import Server


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], payload: dict[str, object], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


@pytest.fixture(scope="module")
def alice(server: Server) -> str:
    return server.user("alice", "MOIS-A")


def secret_of(server: Server) -> str:
    secret = server.services.tokens.keys.verification_key("k1")
    assert secret is not None
    return secret


def claims(sub: str = "alice", **extra: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": sub,
        "jti": "j1",
        "fam": "f1",
        "typ": "access",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": "crossdoc",
        "aud": "crossdoc-api",
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def me(server: Server, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_valid_token_works(server: Server, alice: str) -> None:
    token = jwt.encode(claims(), secret_of(server), algorithm="HS256", headers={"kid": "k1"})
    r = me(server, token)
    assert r.status_code == 200
    assert r.json()["username"] == "alice"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("alg none", lambda s: forge({"alg": "none", "kid": "k1"}, claims())),
        ("alg None capitalised", lambda s: forge({"alg": "None", "kid": "k1"}, claims())),
        (
            "HS512 not pinned",
            lambda s: jwt.encode(claims(), s, algorithm="HS512", headers={"kid": "k1"}),
        ),
        (
            "no exp",
            lambda s: jwt.encode(claims(exp=None), s, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "expired",
            lambda s: jwt.encode(
                claims(exp=int(time.time()) - 5), s, algorithm="HS256", headers={"kid": "k1"}
            ),
        ),
        (
            "wrong aud",
            lambda s: jwt.encode(claims(aud="other"), s, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "wrong iss",
            lambda s: jwt.encode(claims(iss="evil"), s, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "no iat",
            lambda s: jwt.encode(claims(iat=None), s, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "no jti",
            lambda s: jwt.encode(claims(jti=None), s, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "no family",
            lambda s: jwt.encode(claims(fam=None), s, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "no aud",
            lambda s: jwt.encode(claims(aud=None), s, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "not yet valid",
            lambda s: jwt.encode(
                claims(nbf=int(time.time()) + 600), s, algorithm="HS256", headers={"kid": "k1"}
            ),
        ),
        (
            "no kid",
            lambda s: jwt.encode(claims(), s, algorithm="HS256"),
        ),
        (
            "refresh as access",
            lambda s: jwt.encode(
                claims(typ="refresh"), s, algorithm="HS256", headers={"kid": "k1"}
            ),
        ),
        (
            "wrong key",
            lambda s: jwt.encode(claims(), "x" * 48, algorithm="HS256", headers={"kid": "k1"}),
        ),
        (
            "unknown kid",
            lambda s: jwt.encode(claims(), s, algorithm="HS256", headers={"kid": "k9"}),
        ),
        ("garbage", lambda s: "not-a-token"),
        ("empty parts", lambda s: ".."),
        (
            "huge header",
            lambda s: forge({"alg": "HS256", "kid": "k1", "x": "A" * 100_000}, claims()),
        ),
    ],
)
def test_hostile_tokens_are_refused(server: Server, alice: str, name: str, make: object) -> None:
    token = make(secret_of(server))  # type: ignore[operator]
    start = time.monotonic()
    r = me(server, token)
    assert r.status_code == 401, name
    assert r.json()["error"]["code"] in ("invalid_token", "unauthorized")
    assert time.monotonic() - start < 2


def test_tampered_payload_is_refused(server: Server, alice: str) -> None:
    token = jwt.encode(claims(), secret_of(server), algorithm="HS256", headers={"kid": "k1"})
    header, _payload, sig = token.split(".")
    evil = b64(json.dumps(claims(sub="admin")).encode())
    assert me(server, f"{header}.{evil}.{sig}").status_code == 401


def test_hmac_signed_with_public_key_is_refused(server: Server, alice: str) -> None:
    # CVE-2024-33663: an attacker signs HS256 with a public key the server trusts.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": "k1"}
    import hashlib
    import hmac

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert me(server, f"{signing_input}.{b64(sig)}").status_code == 401
    rs = jwt.encode(
        claims(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    assert me(server, rs).status_code == 401


def test_compressed_jwe_is_refused_without_decompressing(server: Server, alice: str) -> None:
    # CVE-2024-33664: a JWE with DEF compression that inflates to megabytes; it is
    # small enough to pass the size cap, so only its shape can refuse it.
    bomb = jwe.encrypt(
        b"{" + b" " * 2_000_000 + b"}", "k" * 16, algorithm="dir", encryption="A128GCM", zip="DEF"
    )
    token = bomb.decode() if isinstance(bomb, bytes) else bomb
    assert len(token.split(".")) == 5 and len(token) < 4096
    start = time.monotonic()
    assert me(server, token).status_code == 401
    assert time.monotonic() - start < 2


def test_disabled_user_loses_access_with_unexpired_token(server: Server) -> None:
    server.user("bob", "MOIS-A")
    token = server.token("bob")
    assert me(server, token).status_code == 200
    with server.client("admin") as c:
        assert c.patch("/admin/users/bob", json={"disabled": True}).status_code == 200
    assert me(server, token).status_code == 401
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": "bob", "password": "password-for-tests"},
    )
    assert r.status_code == 401


def sign_in(server: Server, username: str) -> dict[str, str]:
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": username, "password": "password-for-tests"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def refresh(server: Server, token: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/api/v1/auth/refresh", json={"refresh_token": token})


def logout(server: Server, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
    )


def test_logout_revokes_the_token_and_its_whole_sign_in(server: Server, alice: str) -> None:
    first = sign_in(server, "alice")
    other = sign_in(server, "alice")  # another device
    renewed = refresh(server, first["refresh_token"]).json()  # same family as `first`
    assert me(server, renewed["access_token"]).status_code == 200
    assert logout(server, first["access_token"]).status_code == 204
    assert me(server, first["access_token"]).status_code == 401
    assert me(server, renewed["access_token"]).status_code == 401  # the same sign-in
    assert refresh(server, renewed["refresh_token"]).status_code == 401
    assert me(server, other["access_token"]).status_code == 200  # another sign-in lives on
    assert logout(server, first["access_token"]).status_code == 401
    events = server.services.catalog.audit.page(
        AuditFilter(actor="alice", action="sign_out"), limit=10
    )
    assert len(events) == 1 and events[0].outcome == "ok"


def test_a_refresh_token_works_once_and_reuse_revokes_the_family(
    server: Server, alice: str
) -> None:
    tokens = sign_in(server, "alice")
    r = refresh(server, tokens["refresh_token"])
    assert r.status_code == 200
    renewed = r.json()
    assert me(server, renewed["access_token"]).status_code == 200
    # The spent token again: someone copied it. Everything of this sign-in dies.
    assert refresh(server, tokens["refresh_token"]).status_code == 401
    assert me(server, renewed["access_token"]).status_code == 401
    assert me(server, tokens["access_token"]).status_code == 401
    assert refresh(server, renewed["refresh_token"]).status_code == 401
    reuse = server.services.catalog.audit.page(
        AuditFilter(actor="alice", action="token_reuse"), limit=10
    )
    assert reuse and reuse[-1].outcome == "denied"


def test_disabled_user_cannot_refresh_and_old_tokens_stay_dead(server: Server) -> None:
    server.user("carol", "MOIS-A")
    tokens = sign_in(server, "carol")
    with server.client("admin") as c:
        assert c.patch("/admin/users/carol", json={"disabled": True}).status_code == 200
    assert refresh(server, tokens["refresh_token"]).status_code == 401
    assert me(server, tokens["access_token"]).status_code == 401
    with server.client("admin") as c:
        assert c.patch("/admin/users/carol", json={"disabled": False}).status_code == 200
    # Enabled again: tokens from before the disable stay refused; a new sign-in works.
    assert me(server, tokens["access_token"]).status_code == 401
    time.sleep(1.1)  # token times have one-second resolution
    assert me(server, sign_in(server, "carol")["access_token"]).status_code == 200


def test_refresh_token_flow(server: Server, alice: str) -> None:
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": "alice", "password": "password-for-tests"},
    )
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert me(server, body["refresh_token"]).status_code == 401  # not an access token
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}
    )
    assert r.status_code == 200
    assert me(server, r.json()["access_token"]).status_code == 200
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/refresh", json={"refresh_token": body["access_token"]}
    )
    assert r.status_code == 401


def test_failed_sign_ins_are_audited(server: Server, alice: str) -> None:
    for _ in range(3):
        r = httpx.post(
            f"{server.base_url}/api/v1/auth/token",
            data={"username": "alice", "password": "wrong-password"},
        )
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_credentials"
    events = server.services.catalog.audit.page(
        AuditFilter(actor="alice", action="sign_in"), limit=1000
    )
    assert sum(1 for e in events if e.outcome == "denied") >= 3


def test_token_expiry_is_enforced_by_the_service(server: Server) -> None:
    issued = server.services.tokens.issue(
        "alice", "access", now=datetime.now(UTC) - timedelta(hours=2)
    )
    assert me(server, issued.token).status_code == 401
