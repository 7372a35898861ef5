"""docker-compose.yml: valid against the Compose specification and for Debian's docker-compose 1.29, complete
for `docker compose up`; docker-compose.ci.yml only swaps in local infrastructure images and stand-ins."""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest
import yaml
from tests.deploy_support import ROOT, image_services, run, tool

from isseimail_shared.unsubscribe import TOKEN_PATTERN
from isseimail_testing.services import services

SERVICES = image_services()


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    """check-jsonschema with the Compose specification's schema (vendored in check-jsonschema) accepts the file
    and the CI override (what Compose v2 validates against)."""
    files = ["docker-compose.yml", "docker-compose.ci.yml"]
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_is_built_from_its_dockerfile_with_a_healthcheck_and_start_order() -> None:
    """Each isseimail service builds from the Dockerfile and waits for a healthy database and broker."""
    services = compose()["services"]
    for service in SERVICES:
        spec = services[service.name]
        assert spec["build"]["context"] == "."
        assert "dockerfile" not in spec["build"]  # the root Dockerfile
        assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert spec["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert spec["read_only"] is True
    for name, spec in services.items():
        if name not in {"prometheus", "grafana", "unsubscribe-proxy"}:
            assert "healthcheck" in spec or name in {s.name for s in SERVICES}, name  # images carry HEALTHCHECK


def test_gateway_starts_after_every_backend_is_healthy() -> None:
    """The gateway (the only published web port besides the tools) starts last."""
    spec = compose()["services"]["gateway"]
    backends = {s.name for s in SERVICES} - {"gateway"}
    assert backends <= {k for k, v in spec["depends_on"].items() if v["condition"] == "service_healthy"}
    assert spec["ports"] == ["${GATEWAY_HOST_PORT:-8080}:8080"]


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
    assert "${MAILPIT_UI_HOST_PORT:-8025}:8025" in services["mailpit"]["ports"]
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


def ci_override() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.ci.yml").read_text(encoding="utf-8"))
    return data


def test_compose_files_are_valid_for_docker_compose_1_29() -> None:
    """No top-level `name:` (1.29 rejects it); `docker-compose config` accepts the file and the CI override."""
    assert "name" not in compose()
    assert "name" not in ci_override()
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose; make compose-smoke installs it)")
    for files in (["-f", "docker-compose.yml"], ["-f", "docker-compose.yml", "-f", "docker-compose.ci.yml"]):
        result = run([binary, *files, "config", "-q"])
        assert result.returncode == 0, result.stderr


def test_ci_override_swaps_only_infrastructure_images_and_names_its_stand_ins() -> None:
    """The override never touches the isseimail images; infrastructure comes from isseimail-ci/ local builds;
    the stand-ins are named as such; production keeps the upstream images."""
    override = ci_override()["services"]
    production = compose()["services"]
    ours = {s.name for s in services()}
    for name, spec in override.items():
        if name in ours:
            assert set(spec) == {"environment"} or set(spec) == {"environment", "depends_on"}, name
        else:
            assert spec["image"].startswith("isseimail-ci/"), name
    for name in ("postgres", "rabbitmq", "mailpit", "clamav", "prometheus", "grafana", "unsubscribe-proxy"):
        assert not production[name]["image"].startswith("isseimail-ci/"), name
        assert name in override, name
    text = (ROOT / "docker-compose.ci.yml").read_text(encoding="utf-8")
    for stand_in in ("mailpit", "clamav", "grafana"):
        assert re.search(rf"^  {stand_in}: .*STAND-IN|^#   {stand_in} .*", text, re.MULTILINE), stand_in
    assert "dns" in override  # the stack's own DNS: the list-validator never asks the internet
    dns_ip = override["dns"]["networks"]["default"]["ipv4_address"]
    assert override["list-validator"]["environment"]["ISSEIMAIL_DNS_NAMESERVERS"] == dns_ip


def test_clamav_runs_as_a_non_root_user_without_capabilities() -> None:
    """The official ClamAV image started as its clamav user (uid 100), all capabilities dropped."""
    spec = compose()["services"]["clamav"]
    user = str(spec["user"]).split(":")[0]
    assert user not in {"0", "root"}
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]


def test_only_unsubscribe_is_published_for_the_internet() -> None:
    """The unsubscribe proxy passes /unsubscribe/<token> (GET, POST) to the gateway and answers 404 otherwise;
    the gateway believes only that proxy's X-Forwarded-For."""
    services = compose()["services"]
    proxy = services["unsubscribe-proxy"]
    conf_mount = next(v for v in proxy["volumes"] if v.startswith("./deploy/nginx/"))
    conf = (ROOT / conf_mount.split(":")[0]).read_text(encoding="utf-8")
    locations = re.findall(r"^\s*location\s+(.+?)\s*\{\s*$", conf, re.MULTILINE)
    assert locations == [f'~ "^/unsubscribe/{TOKEN_PATTERN}$"', "/"]  # the gateway's own token shape
    assert re.search(r"location / \{\s*return 404;", conf)
    assert "limit_except GET POST" in conf
    assert conf.count("proxy_pass") == 1
    address = proxy["networks"]["default"]["ipv4_address"]
    assert services["gateway"]["environment"]["ISSEIMAIL_TRUSTED_PROXIES"] == f"{address}/32"


def test_every_service_gets_every_url_it_reads() -> None:
    """Each `*_url` setting a service reads (its settings class, from services.toml) is set in its Compose
    environment: a missing one silently points at 127.0.0.1 inside the container (the list-validator could not
    reach the notifier's suppression list, the composer the list-validator)."""
    specs = compose()["services"]
    for service in SERVICES:
        environment = specs[service.name]["environment"]
        for field in service.settings_class().model_fields:
            if field.endswith("_url") and field not in {"database_url", "amqp_url"}:
                assert f"ISSEIMAIL_{field.upper()}" in environment, (service.name, field)
