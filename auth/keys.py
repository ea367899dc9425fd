"""Signing keys for tokens, identified by `kid`, rotatable while the server runs.

`KeyRing` is the port `TokenService` signs and verifies with. Two adapters:

- `StaticKeyRing`: a fixed set of keys (tests; a deployment with one secret).
- `FileKeyRing`: a JSON keys file (mode 0600) in the data dir, re-read whenever
  it changes on disk, so that `crossdoc keys rotate` takes effect in a running
  server without a restart. The configured secret (`CROSSDOC_JWT_SECRET` or the
  generated `jwt-secret` file) is key `k1`; rotation writes a new current key to
  the file and marks the previous one retired. A retired key keeps verifying
  the tokens it signed until they can no longer be valid (`max_token_lifetime`
  after retirement); after that its tokens are refused like any unknown `kid`.

Keys file format::

    {"current": "k20261125101500ab12",
     "keys": [{"kid": "k1", "secret": null, "created_at": null,
               "retired_at": "2026-11-25T10:15:00+00:00"},
              {"kid": "k20261125101500ab12", "secret": "…",
               "created_at": "2026-11-25T10:15:00+00:00", "retired_at": null}]}

`"secret": null` stands for the configured secret, which is never written to the file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

BASE_KID = "k1"
MIN_SECRET_CHARS = 32


class KeyRingError(ValueError):
    """The keys file cannot be read or does not describe a usable key ring."""


class KeyRing(Protocol):
    """Where token signing keys come from."""

    def signing_key(self) -> tuple[str, str]:
        """The (kid, secret) new tokens are signed with."""
        ...

    def verification_key(self, kid: str) -> str | None:
        """The secret for `kid`, or None if the kid is unknown or retired too long ago."""
        ...


class StaticKeyRing:
    """A fixed ring: `keys` maps kids to secrets, new tokens are signed with `active_kid`."""

    def __init__(self, keys: Mapping[str, str], active_kid: str) -> None:
        if active_kid not in keys:
            raise KeyRingError("the active key id must be one of the keys")
        if any(len(secret) < MIN_SECRET_CHARS for secret in keys.values()):
            raise KeyRingError(f"signing secrets must be at least {MIN_SECRET_CHARS} characters")
        self._keys = dict(keys)
        self._active_kid = active_kid

    def signing_key(self) -> tuple[str, str]:
        return self._active_kid, self._keys[self._active_kid]

    def verification_key(self, kid: str) -> str | None:
        return self._keys.get(kid)


@dataclass(frozen=True)
class KeyEntry:
    kid: str
    secret: str | None  # None: the configured base secret
    created_at: datetime | None
    retired_at: datetime | None


@dataclass(frozen=True)
class KeysFile:
    current: str
    keys: tuple[KeyEntry, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "current": self.current,
                "keys": [
                    {
                        "kid": k.kid,
                        "secret": k.secret,
                        "created_at": k.created_at.isoformat() if k.created_at else None,
                        "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                    }
                    for k in self.keys
                ],
            },
            indent=2,
        )


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as err:
        raise KeyRingError(f"keys file: {what} is not an ISO 8601 time") from err
    if parsed.tzinfo is None:
        raise KeyRingError(f"keys file: {what} needs a time zone")
    return parsed


def parse_keys_file(text: str) -> KeysFile:
    """Parse and check a keys file (raises `KeyRingError`)."""
    try:
        raw = json.loads(text)
        current = raw["current"]
        entries = raw["keys"]
    except (ValueError, KeyError, TypeError) as err:
        raise KeyRingError("keys file: not a keys file") from err
    if not isinstance(current, str) or not isinstance(entries, list):
        raise KeyRingError("keys file: not a keys file")
    keys = []
    for item in entries:
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
            raise KeyRingError("keys file: every key needs a kid")
        secret = item.get("secret")
        if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS):
            raise KeyRingError(f"keys file: secret of {item['kid']} is too short")
        keys.append(
            KeyEntry(
                item["kid"],
                secret,
                _time(item.get("created_at"), "created_at"),
                _time(item.get("retired_at"), "retired_at"),
            )
        )
    kids = [k.kid for k in keys]
    if len(set(kids)) != len(kids):
        raise KeyRingError("keys file: a kid appears twice")
    if current not in kids:
        raise KeyRingError("keys file: the current key is not listed")
    return KeysFile(current, tuple(keys))


def write_keys_file(path: Path, keys: KeysFile) -> None:
    """Replace the keys file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(keys.to_json())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def rotate_keys(
    path: Path,
    max_token_lifetime: timedelta,
    *,
    drop_old: bool = False,
    now: datetime | None = None,
) -> KeysFile:
    """Make a new current key and retire the previous one; returns the new keys file.

    Keys retired longer than `max_token_lifetime` ago are dropped (their tokens
    have all expired). With `drop_old` every other key is retired at once, for a
    leaked key: every token signed before is refused from the next request on.
    """
    now = now or datetime.now(UTC)
    if path.exists():
        current = parse_keys_file(path.read_text(encoding="utf-8"))
    else:
        current = KeysFile(BASE_KID, (KeyEntry(BASE_KID, None, None, None),))
    kept: list[KeyEntry] = []
    for key in current.keys:
        retired = key.retired_at
        if key.kid == current.current and retired is None:
            retired = now
        if drop_old:
            retired = now - max_token_lifetime - timedelta(seconds=1)
        if retired is not None and retired + max_token_lifetime < now:
            if key.secret is None:
                # Keep the base key's retirement on record, or it would verify again.
                kept.append(KeyEntry(key.kid, None, key.created_at, retired))
            continue
        kept.append(KeyEntry(key.kid, key.secret, key.created_at, retired))
    kid = f"k{now:%Y%m%d%H%M%S}{secrets.token_hex(2)}"
    kept.append(KeyEntry(kid, secrets.token_urlsafe(48), now, None))
    new = KeysFile(kid, tuple(kept))
    write_keys_file(path, new)
    return new


class FileKeyRing:
    """Keys from the configured secret plus the keys file, re-read when the file changes."""

    def __init__(self, path: Path, base_secret: str, max_token_lifetime: timedelta) -> None:
        if len(base_secret) < MIN_SECRET_CHARS:
            raise KeyRingError(f"signing secrets must be at least {MIN_SECRET_CHARS} characters")
        self.path = path
        self._base_secret = base_secret
        self._max_lifetime = max_token_lifetime
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._file = KeysFile(BASE_KID, (KeyEntry(BASE_KID, None, None, None),))
        self._refresh(strict=True)

    def _refresh(self, *, strict: bool = False) -> KeysFile:
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp:
                return self._file
            if stamp is None:
                self._file = KeysFile(BASE_KID, (KeyEntry(BASE_KID, None, None, None),))
            else:
                try:
                    self._file = parse_keys_file(self.path.read_text(encoding="utf-8"))
                except (KeyRingError, OSError) as err:
                    if strict:
                        raise KeyRingError(f"{self.path}: {err}") from err
                    # Keep the last good ring rather than refuse every token.
                    log.error(
                        "keys file %s unreadable, keeping the previous keys: %s", self.path, err
                    )
                    return self._file
            self._stamp = stamp
            return self._file

    def _secret(self, entry: KeyEntry) -> str:
        return entry.secret if entry.secret is not None else self._base_secret

    def signing_key(self) -> tuple[str, str]:
        keys = self._refresh()
        entry = next(k for k in keys.keys if k.kid == keys.current)
        return entry.kid, self._secret(entry)

    def verification_key(self, kid: str) -> str | None:
        keys = self._refresh()
        for entry in keys.keys:
            if entry.kid == kid:
                if entry.retired_at is not None and (
                    entry.retired_at + self._max_lifetime < datetime.now(UTC)
                ):
                    return None
                return self._secret(entry)
        return None
