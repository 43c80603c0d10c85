"""docker-compose.yml and the Dockerfile stay correct even though no Docker engine runs here."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_health_checks():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker", "delivery-worker", "scheduler"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "delivery-worker", "scheduler"):
        assert "healthcheck" in services[name], name


def test_app_services_share_one_image_and_one_environment():
    services = _compose()["services"]
    app_services = [services[name] for name in ("web", "worker", "delivery-worker", "scheduler", "migrate")]
    assert len({s["image"] for s in app_services}) == 1
    assert all(s["build"] == "." for s in app_services)
    environments = [s["environment"] for s in app_services]
    assert all(env == environments[0] for env in environments)
    assert environments[0]["DATABASE_URL"].startswith("postgresql://")
    assert environments[0]["REDIS_URL"].startswith("redis://")
    assert "&shoprelay-env" in (ROOT / "docker-compose.yml").read_text()


def test_commands_match_the_cli():
    services = _compose()["services"]
    assert services["worker"]["command"] == ["shoprelay", "worker"]
    assert services["delivery-worker"]["command"] == ["shoprelay", "worker", "-q", "delivery", "-q", "alerts"]
    assert services["scheduler"]["command"] == ["shoprelay", "scheduler"]
    assert services["migrate"]["command"] == ["shoprelay", "db", "upgrade"]
    assert "gunicorn" in services["web"]["command"]
    assert "webapp:create_app()" in services["web"]["command"]


def test_worker_can_be_scaled():
    worker = _compose()["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_dockerfile_copies_what_exists():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert "gunicorn" in dockerfile
