"""Dockerfiles: generated from one template, lint-clean, and built the way the issue asks."""

from __future__ import annotations

import re

import pytest
from tests.deploy_support import ROOT, load_script, run, tool

dockerfiles = load_script("deploy/docker/dockerfiles.py")
SERVICES = dockerfiles.SERVICES


def test_every_service_has_a_dockerfile_matching_the_template() -> None:
    """Each services/<svc>/Dockerfile is exactly what deploy/docker/dockerfiles.py renders (no drift)."""
    folders = {p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()}
    assert folders == {s.folder for s in SERVICES}
    for service in SERVICES:
        assert dockerfiles.path_of(service).read_text(encoding="utf-8") == dockerfiles.render(service), service.name


def test_hadolint_passes_on_every_dockerfile() -> None:
    """hadolint reports nothing (warnings included) on any Dockerfile."""
    paths = [str(dockerfiles.path_of(s)) for s in SERVICES]
    result = run([tool("hadolint"), "--failure-threshold", "style", *paths])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_dockerfile_is_multi_stage_pinned_non_root_with_healthcheck(service: object) -> None:
    """Two stages, pinned base images, uv only in the build stage, a numeric non-root USER and a HEALTHCHECK."""
    text = dockerfiles.path_of(service).read_text(encoding="utf-8")
    froms = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.MULTILINE)
    assert [stage for _, stage in froms] == ["build", "runtime"]
    for image, _ in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), image
    runtime = text.split("AS runtime", 1)[1]
    assert "uv " not in runtime
    assert "/usr/local/bin/uv" not in runtime
    assert "apt-get" not in text  # no compilers or build tools anywhere
    user = re.findall(r"^USER (\S+)$", runtime, re.MULTILINE)
    assert user
    assert user[-1].split(":")[0].isdigit()
    assert user[-1].split(":")[0] != "0"
    assert "HEALTHCHECK" in runtime
    assert "/healthz" in runtime
    assert re.search(rf"^EXPOSE {service.port}\b", runtime, re.MULTILINE)
    assert f'ENTRYPOINT ["{service.command}"]' in runtime


def test_service_table_matches_the_packages() -> None:
    """The ports and console scripts the images use are the ones the services declare."""
    for service in SERVICES:
        pyproject = (ROOT / "services" / service.folder / "pyproject.toml").read_text(encoding="utf-8")
        assert f'name = "{service.package}"' in pyproject
        assert f"{service.command} = " in pyproject
        settings = next((ROOT / "services" / service.folder / "src").glob("*/settings.py")).read_text(encoding="utf-8")
        assert f"default={service.port}," in settings
        assert service.port_env in settings


def test_dockerignore_sends_only_sources_and_lock() -> None:
    """.dockerignore excludes everything by default and re-includes only what the images need."""
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "**"
    assert "!uv.lock" in rules
    assert "!services/*/src/**" in rules
    assert not any("tests" in r and r.startswith("!") for r in rules)
