"""docker-compose.yml: valid against the Compose specification and complete for `docker compose up`."""

from __future__ import annotations

from typing import Any

import yaml
from tests.deploy_support import ROOT, load_script, run, tool

SERVICES = load_script("deploy/docker/dockerfiles.py").SERVICES


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    """check-jsonschema with the Compose specification's schema (vendored in check-jsonschema) accepts the file."""
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_is_built_from_its_dockerfile_with_a_healthcheck_and_start_order() -> None:
    """Each isseimail service builds from its Dockerfile and waits for a healthy database and broker."""
    services = compose()["services"]
    for service in SERVICES:
        spec = services[service.name]
        assert spec["build"] == {"context": ".", "dockerfile": f"services/{service.folder}/Dockerfile"}
        assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert spec["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert spec["read_only"] is True
    for name, spec in services.items():
        if name not in {"prometheus", "grafana"}:
            assert "healthcheck" in spec or name in {s.name for s in SERVICES}, name  # images carry HEALTHCHECK


def test_gateway_starts_after_every_backend_is_healthy() -> None:
    """The gateway (the only published web port besides the tools) starts last."""
    spec = compose()["services"]["gateway"]
    backends = {s.name for s in SERVICES} - {"gateway"}
    assert backends <= {k for k, v in spec["depends_on"].items() if v["condition"] == "service_healthy"}
    assert spec["ports"] == ["8080:8080"]


def test_dispatcher_workers_run_the_worker_command_with_replicas() -> None:
    """The SMTP workers are a separate service on the dispatcher image with a replica count and a health check."""
    spec = compose()["services"]["dispatcher-worker"]
    assert spec["image"] == compose()["services"]["dispatcher"]["image"]
    assert spec["build"] == compose()["services"]["dispatcher"]["build"]  # never pulled: built like the dispatcher
    assert spec["command"] == ["worker"]
    assert spec["deploy"]["replicas"] >= 2
    assert "8086/healthz" in " ".join(spec["healthcheck"]["test"])


def test_infrastructure_mail_catcher_and_named_volumes() -> None:
    """RabbitMQ with the management UI, PostgreSQL, Mailpit as the relay, data on named volumes."""
    data = compose()
    services = data["services"]
    assert "management" in services["rabbitmq"]["image"]
    assert services["mailpit"]["image"].startswith("axllent/mailpit:v")
    assert "8025:8025" in services["mailpit"]["ports"]
    assert services["gateway"]["environment"]["ISSEIMAIL_SMTP_RELAY"] == "smtp://mailpit:1025"
    for name in ("postgres", "rabbitmq", "mailpit"):
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in data["volumes"], name
    for name, spec in services.items():
        assert ":latest" not in spec.get("image", ""), name
        assert ":" in spec.get("image", "x:pinned"), name


def test_prometheus_and_grafana_use_the_files_in_deploy() -> None:
    """Compose mounts the repository's Prometheus config, rules and Grafana provisioning (all must exist)."""
    services = compose()["services"]
    mounts = [v.split(":")[0] for name in ("prometheus", "grafana") for v in services[name]["volumes"]]
    local = [m for m in mounts if m.startswith("./")]
    assert len(local) == 4
    for path in local:
        assert (ROOT / path).exists(), path
