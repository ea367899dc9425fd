"""Token service, key rings and revocation records, below HTTP."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jose import jwe

import auth.tokens
from auth.errors import InvalidTokenError
from auth.keys import FileKeyRing, KeyRingError, StaticKeyRing, parse_keys_file, rotate_keys
from auth.tokens import TokenService
from storage.catalog.records import Revocation
from storage.catalog.sql import SqlCatalog
from storage.errors import ConflictError

SECRET = "s" * 40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def service() -> TokenService:
    return TokenService(StaticKeyRing({"k1": SECRET}, "k1"))


@pytest.mark.parametrize(
    "token",
    [
        # A 100 KB header, JWE (five parts, CVE-2024-33664), alg none, another
        # algorithm, unknown kid, extra header fields (jwk/jku/x5u tricks).
        b64(json.dumps({"alg": "HS256", "kid": "k1", "x": "A" * 100_000}).encode()) + ".e30.c2ln",
        "a.b.c.d.e",
        b64(b'{"alg":"none","kid":"k1"}') + ".e30.",
        b64(b'{"alg":"none","kid":"k1"}') + ".e30.c2ln",
        b64(b'{"alg":"HS512","kid":"k1"}') + ".e30.c2ln",
        b64(b'{"alg":"RS256","kid":"k1"}') + ".e30.c2ln",
        b64(b'{"alg":"HS256","kid":"k9"}') + ".e30.c2ln",
        b64(b'{"alg":"HS256","kid":"k1","jwk":{"kty":"oct","k":"eA"}}') + ".e30.c2ln",
        b64(b'{"alg":"HS256"}') + ".e30.c2ln",
        b64(b"[1]") + ".e30.c2ln",
        "%%%.e30.c2ln",
    ],
)
def test_hostile_tokens_never_reach_the_library(
    service: TokenService, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_decode(*_: object, **__: object) -> None:
        raise AssertionError("jose was asked to decode a token refused before it")

    monkeypatch.setattr(auth.tokens.jwt, "decode", must_not_decode)
    with pytest.raises(InvalidTokenError):
        service.verify(token, "access")


def test_compressed_jwe_bomb_is_refused_without_inflating(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = jwe.encrypt(
        b"{" + b" " * 2_000_000 + b"}", "k" * 16, algorithm="dir", encryption="A128GCM", zip="DEF"
    )
    token = bomb.decode() if isinstance(bomb, bytes) else bomb
    assert len(token) < auth.tokens.MAX_TOKEN_BYTES  # refused for its shape, not its size

    def must_not_decrypt(*_: object, **__: object) -> None:
        raise AssertionError("a JWE reached jose")

    monkeypatch.setattr(auth.tokens.jwt, "decode", must_not_decrypt)
    start = time.monotonic()
    with pytest.raises(InvalidTokenError):
        service.verify(token, "access")
    assert time.monotonic() - start < 0.1


def test_pair_shares_a_family_and_types_are_not_interchangeable(service: TokenService) -> None:
    access, refresh = service.issue_pair("kim")
    assert access.claims.family == refresh.claims.family
    assert access.claims.token_id != refresh.claims.token_id
    assert service.verify(access.token, "access").family == access.claims.family
    with pytest.raises(InvalidTokenError):
        service.verify(refresh.token, "access")
    with pytest.raises(InvalidTokenError):
        service.verify(access.token, "refresh")
    assert refresh.claims.expires_at - refresh.claims.issued_at == service.refresh_ttl
    assert access.claims.expires_at - access.claims.issued_at == timedelta(minutes=15)


def test_file_key_ring_follows_rotation_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "jwt-keys.json"
    lifetime = timedelta(hours=1)
    service = TokenService(FileKeyRing(path, SECRET, lifetime))
    first = service.issue("kim", "access")
    assert json.loads(base64.urlsafe_b64decode(first.token.split(".")[0] + "==")) == {
        "alg": "HS256",
        "kid": "k1",
        "typ": "JWT",
    }
    keys = rotate_keys(path, lifetime)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert SECRET not in path.read_text()  # the configured secret is never written out
    second = service.issue("kim", "access")
    assert f'"kid":"{keys.current}"'.encode() in base64.urlsafe_b64decode(
        second.token.split(".")[0] + "=="
    )
    assert service.verify(first.token, "access").subject == "kim"  # old kid still verifies
    assert service.verify(second.token, "access").subject == "kim"
    third_keys = rotate_keys(path, lifetime)
    assert {k.kid for k in third_keys.keys} == {"k1", keys.current, third_keys.current}
    service.verify(second.token, "access")
    rotate_keys(path, lifetime, drop_old=True)
    for old in (first, second):
        with pytest.raises(InvalidTokenError):
            service.verify(old.token, "access")
    service.verify(service.issue("kim", "access").token, "access")


def test_retired_keys_age_out(tmp_path: Path) -> None:
    path = tmp_path / "jwt-keys.json"
    lifetime = timedelta(minutes=30)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    rotate_keys(path, lifetime, now=long_ago)  # k1 retired two hours ago
    ring = FileKeyRing(path, SECRET, lifetime)
    assert ring.verification_key("k1") is None
    newer = rotate_keys(path, lifetime)  # the key made two hours ago retires now
    kids = [k.kid for k in parse_keys_file(path.read_text()).keys]
    assert kids[0] == "k1"  # kept, retired, so that it cannot come back
    assert ring.verification_key(kids[1]) is not None
    assert ring.signing_key()[0] == newer.current


def test_a_broken_keys_file_keeps_the_last_good_keys(tmp_path: Path) -> None:
    path = tmp_path / "jwt-keys.json"
    rotate_keys(path, timedelta(hours=1))
    ring = FileKeyRing(path, SECRET, timedelta(hours=1))
    kid = ring.signing_key()[0]
    path.write_text("{not json")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert ring.signing_key()[0] == kid
    with pytest.raises(KeyRingError):
        FileKeyRing(path, SECRET, timedelta(hours=1))


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    c = SqlCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    c.migrate()
    c.organisation.create_ministry("M1", "부")
    c.organisation.create_department("D1", "과", "M1")
    c.organisation.create_user("kim", "hash", "김", "D1", ["member"])
    return c


def test_revocations_are_checked_spent_once_and_pruned(catalog: SqlCatalog) -> None:
    now = datetime.now(UTC)
    later = now + timedelta(hours=1)
    issued = now - timedelta(minutes=1)
    assert not catalog.tokens.is_revoked("j1", "f1", "kim", issued)
    catalog.tokens.revoke([Revocation("jti", "j1", later)])
    assert catalog.tokens.is_revoked("j1", "f1", "kim", issued)
    assert not catalog.tokens.is_revoked(None, "f1", "kim", issued)
    catalog.tokens.revoke([Revocation("family", "f1", later)])
    assert catalog.tokens.is_revoked("j2", "f1", "kim", issued)
    with pytest.raises(ConflictError):
        catalog.tokens.revoke([Revocation("jti", "j1", later)], fail_if_revoked=True)
    catalog.tokens.revoke([Revocation("jti", "old", now - timedelta(seconds=1))])
    assert catalog.tokens.prune() == 1
    catalog.tokens.revoke([Revocation("jti", "old2", now - timedelta(seconds=1))])
    catalog.tokens.revoke([Revocation("jti", "j3", later)])  # prunes as it goes
    with catalog.engine.connect() as conn:
        kept = {row[0] for row in conn.exec_driver_sql("SELECT value FROM token_revocations")}
    assert kept == {"j1", "f1", "j3"}


def test_disabling_a_user_revokes_every_token_issued_so_far(catalog: SqlCatalog) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    catalog.organisation.update_user("kim", disabled=True)
    catalog.organisation.update_user("kim", disabled=False)
    assert catalog.tokens.is_revoked("j", "f", "kim", before)
    assert not catalog.tokens.is_revoked("j", "f", "kim", datetime.now(UTC) + timedelta(seconds=1))
    assert not catalog.tokens.is_revoked("j", "f", "lee", before)


def test_a_verified_token_is_not_decoded_again_while_its_key_and_lifetime_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = {"k1": SECRET}

    class MutableRing:
        def signing_key(self) -> tuple[str, str]:
            return "k1", keys["k1"]

        def verification_key(self, kid: str) -> str | None:
            return keys.get(kid)

    service = TokenService(MutableRing())
    access, refresh = service.issue_pair("kim")
    decodes: list[str] = []
    real_decode = auth.tokens.jwt.decode

    def counting_decode(token: str, *args: object, **kwargs: object) -> object:
        decodes.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(auth.tokens.jwt, "decode", counting_decode)
    assert service.verify(access.token, "access").token_id == access.claims.token_id
    assert service.verify(access.token, "access").token_id == access.claims.token_id
    assert decodes == [access.token]
    # The type is checked on every call, cached or not.
    with pytest.raises(InvalidTokenError, match="type"):
        service.verify(access.token, "refresh")
    service.verify(refresh.token, "refresh")
    with pytest.raises(InvalidTokenError, match="type"):
        service.verify(refresh.token, "access")
    # A tampered copy is a different token: decoded, and refused.
    head, body, signature = access.token.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidTokenError):
        service.verify(tampered, "access")
    # The same kid with another secret (a key replaced): the cache is not trusted.
    keys["k1"] = "t" * 40
    with pytest.raises(InvalidTokenError):
        service.verify(access.token, "access")
    # The key dropped: refused before any cache lookup.
    keys["k1"] = SECRET
    assert service.verify(access.token, "access").token_id == access.claims.token_id
    del keys["k1"]
    with pytest.raises(InvalidTokenError, match="unknown signing key"):
        service.verify(access.token, "access")


def test_a_cached_token_still_expires() -> None:
    service = TokenService(StaticKeyRing({"k1": SECRET}, "k1"), access_ttl=timedelta(seconds=1))
    issued = service.issue("kim", "access")
    assert service.verify(issued.token, "access").token_id == issued.claims.token_id
    time.sleep(max(0.0, issued.claims.expires_at.timestamp() - time.time()) + 1.1)
    with pytest.raises(InvalidTokenError):
        service.verify(issued.token, "access")
