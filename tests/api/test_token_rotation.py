"""Signing keys rotated with `crossdoc keys rotate` while the server runs (no restart)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, Server, start_server


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    del stack  # a dependency only: started again for each stack (tests/api/conftest.py)
    yield from start_server(tmp_path_factory.mktemp("rotation"))


def rotate(server: Server, *args: str) -> str:
    settings = server.services.settings
    r = subprocess.run(
        [sys.executable, "-m", "crossdoc", "keys", "rotate", *args],
        env=dict(os.environ, CROSSDOC_DATA_DIR=str(settings.data_dir)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[3]  # "new signing key KID in FILE"


def sign_in(server: Server) -> str:
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": "dana", "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def kid_of(token: str) -> str:
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    kid: str = header["kid"]
    return kid


def status(server: Server, token: str) -> int:
    r = httpx.get(f"{server.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_rotation_takes_effect_at_once_and_old_tokens_age_out(server: Server) -> None:
    server.user("dana", "MOIS-A")
    before = sign_in(server)
    assert kid_of(before) == "k1"
    new_kid = rotate(server)
    assert Path(server.services.settings.keys_file).exists()
    after = sign_in(server)
    assert kid_of(after) == new_kid != "k1"
    assert status(server, before) == 200  # the retired key verifies its tokens
    assert status(server, after) == 200
    # After a leak: every older key refused at once, still without a restart.
    newest = rotate(server, "--drop-old")
    assert status(server, before) == 401
    assert status(server, after) == 401
    latest = sign_in(server)
    assert kid_of(latest) == newest
    assert status(server, latest) == 200
