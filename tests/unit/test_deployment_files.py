"""The files users deploy with (Dockerfile, infra/docker-compose.yml) stay true to the code.

No Docker engine runs here, so these check what can drift without one: every
`CROSSDOC_*` setting the compose file sets is one `crossdoc/settings.py` reads
(a typo there is silently ignored by pydantic-settings and the service runs on
the embedded default), images are pinned, every long-running engine has a health
check the services wait on, no secret has a default, and the image ships what
the code loads at run time (the analysis files, the index settings).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from crossdoc.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "infra" / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ES_DOCKERFILE = ROOT / "infra" / "elasticsearch" / "Dockerfile"

#: Services that run once and exit (no health check: `service_completed_successfully`).
ONE_SHOT = {"minio-bucket"}
#: The indexing workers have no port to probe; the API's /readyz checks the queue.
NO_PROBE = ONE_SHOT | {"worker"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _crossdoc_settings(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "write environment as a mapping (KEY: value)"
    return {k: str(v) for k, v in env.items() if k.startswith("CROSSDOC_")}


def test_every_crossdoc_setting_in_compose_is_one_the_code_reads(
    compose: dict[str, Any],
) -> None:
    known = {f"CROSSDOC_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        unknown = set(_crossdoc_settings(service)) - known
        assert not unknown, f"{name}: settings the code does not read: {sorted(unknown)}"


def test_the_api_and_the_workers_run_on_the_scale_out_engines_with_one_configuration(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    api, worker = _crossdoc_settings(services["api"]), _crossdoc_settings(services["worker"])
    assert api == worker, "the API and the workers must see the same engines"
    for setting in (
        "CROSSDOC_DATABASE_URL",
        "CROSSDOC_STORAGE_URL",
        "CROSSDOC_TIKA_URL",
        "CROSSDOC_SEARCH_URL",
        "CROSSDOC_BROKER_URL",
    ):
        assert api.get(setting), f"{setting} must be set: else that part runs embedded"
    assert api["CROSSDOC_ENVIRONMENT"] == "production"
    assert api["CROSSDOC_DEMO"] == "false"


def test_secrets_have_no_default_and_come_from_the_env_file(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for secret in (
        "CROSSDOC_JWT_SECRET",
        "CROSSDOC_ADMIN_PASSWORD",
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
    ):
        # ${NAME:?message}: compose refuses to start without it; ${NAME:-x} would be a default.
        assert re.search(r"\$\{" + secret + r":\?", text), secret
        assert not re.search(r"\$\{" + secret + r":?-", text), f"{secret} has a default"
    example = (ROOT / "infra" / ".env.example").read_text(encoding="utf-8")
    assert "CROSSDOC_JWT_SECRET=" in example
    assert "infra/.env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if "build" in service:
            continue
        tag = image.rpartition(":")[2]
        assert ":" in image and tag not in {"latest", "latest-full"}, f"{name}: pin {image!r}"
    base = re.search(r"^FROM\s+(\S+)", ES_DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert base and re.search(r":8\.\d+\.\d+$", base.group(1)), "Elasticsearch 8.x, pinned"


def test_every_engine_has_a_health_check_that_its_users_wait_on(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name in NO_PROBE:
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no check"
    for name, service in services.items():
        for needed, how in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} waits on an unknown service {needed}"
            wanted = "service_completed_successfully" if needed in ONE_SHOT else "service_healthy"
            assert how == {"condition": wanted}, f"{name} must wait for {needed}: {wanted}"


def test_only_the_api_is_published_and_only_on_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        ports = service.get("ports") or []
        if name == "api":
            assert ports == ["127.0.0.1:8000:8000"]
        else:
            assert not ports, f"{name} must stay on the private network"


def test_stateful_engines_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name in ("postgres", "minio", "elasticsearch", "redis", "api"):
        mounts = compose["services"][name].get("volumes") or []
        named = {m.split(":", 1)[0] for m in mounts}
        assert named and named <= declared, f"{name}: data outside a declared volume"


def test_the_image_ships_what_the_code_loads_at_run_time() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for package in ("crossdoc", "auth", "storage", "indexer", "search_api", "services"):
        assert re.search(rf"^COPY {package} ", text, re.M), f"the image lacks {package}/"
    # Package data read through importlib.resources (crossdoc.settings, the index settings).
    assert "COPY infra/analysis " in text
    assert "COPY infra/elasticsearch " in text
    assert re.search(r"^USER crossdoc$", text, re.M), "the service must not run as root"
    es = ES_DOCKERFILE.read_text(encoding="utf-8")
    assert "elasticsearch-plugin install --batch analysis-nori" in es
    for name in ("userdict_ko.txt", "synonyms_ko.txt"):
        assert (ROOT / "infra" / "analysis" / name).is_file()
        assert f"infra/analysis/{name}" in es, f"the search image lacks {name}"
    settings = (ROOT / "infra" / "elasticsearch" / "index-settings.json").read_text("utf-8")
    assert "analysis/userdict_ko.txt" in settings and "analysis/synonyms_ko.txt" in settings
