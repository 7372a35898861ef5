"""The one Dockerfile of the six service images: lint-clean, offline-buildable (no frontend to pull), pinned,
non-root, and a .dockerignore both of Debian's builders honour. `make images` builds and runs them for real."""

from __future__ import annotations

import re

import pytest
import yaml
from tests.deploy_support import ROOT, image_services, run, tool

from isseimail_testing.services import Service

DOCKERFILE = ROOT / "Dockerfile"
SERVICES = image_services()


def test_one_dockerfile_for_every_service() -> None:
    """No per-service Dockerfiles and no template generator: the root Dockerfile with build arguments."""
    assert DOCKERFILE.exists()
    assert not list((ROOT / "services").glob("*/Dockerfile"))
    assert not (ROOT / "deploy" / "docker" / "dockerfiles.py").exists()
    folders = {p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()}
    assert folders == {s.directory.removeprefix("services/") for s in SERVICES}


def test_hadolint_passes_on_every_dockerfile() -> None:
    """hadolint reports nothing (warnings included) on the service Dockerfile; on the CI stand-ins' one only
    what a stand-in built from Debian's current packages must do: unpinned apt packages (DL3008), the apt lists
    of the shared `apt` stage (DL3009), the Debian packages' named users (DL3066)."""
    hadolint = tool("hadolint")
    result = run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    ci = ["--ignore", "DL3008", "--ignore", "DL3009", "--ignore", "DL3066"]
    result = run([hadolint, "--failure-threshold", "style", *ci, str(ROOT / "deploy" / "docker" / "ci" / "Dockerfile")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_offline_pinned_non_root_with_healthcheck() -> None:
    """No `# syntax=` line (BuildKit would pull a frontend image), a pinned default base, uv only in the build
    stage, a numeric non-root USER, a HEALTHCHECK on /healthz, the console script as entrypoint."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1))
    stages = re.findall(r"^FROM \$\{BASE_IMAGE\} AS (\w+)$", text, re.MULTILINE)
    assert stages == ["manifests", "build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "uv " not in runtime
    assert "/opt/uv" not in runtime
    assert "apt-get" not in text  # no compilers or build tools anywhere
    assert re.search(r"^ARG UV_VERSION=\d+\.\d+\.\d+$", text, re.MULTILINE)
    assert "uv sync --frozen --no-dev --no-editable" in text
    assert re.search(r"^ARG UID=(\d+)$", runtime, re.MULTILINE)
    assert int(re.findall(r"^ARG UID=(\d+)$", runtime, re.MULTILINE)[0]) != 0
    assert re.findall(r"^USER (\S+)$", runtime, re.MULTILINE) == ["${UID}:${UID}"]
    assert "HEALTHCHECK" in runtime
    assert "/healthz" in runtime
    assert 'ENTRYPOINT ["/app/service"]' in runtime


def test_dockerignore_has_no_exceptions() -> None:
    """Only plain exclusions: Debian's engine ignores `!` exceptions under a wildcard (`!services/*/src/**`),
    so the file works the same with the classic builder and BuildKit. Tests, tooling and local state stay out."""
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert not [r for r in rules if r.startswith("!")]
    for needed in (".git", ".venv", "var", "tests", "*/tests", "*/*/tests"):
        assert needed in rules, needed
    assert not {"shared", "services", "testing", "uv.lock", "pyproject.toml"} & set(rules)


def compose_services() -> dict[str, dict[str, object]]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services: dict[str, dict[str, object]] = data["services"]
    return services


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_builds_each_service_from_the_dockerfile_with_its_registry_values(service: Service) -> None:
    """docker-compose.yml builds each image from the root Dockerfile with services.toml's package, console
    script and port, tagged isseimail/<name>:dev (make images tags the same and :<version>)."""
    spec = compose_services()[service.name]
    assert spec["build"] == {
        "context": ".",
        "args": {"PACKAGE": service.package, "COMMAND": service.entry_point, "PORT": str(service.port)},
    }
    assert spec["image"] == f"isseimail/{service.name}:dev"
    pyproject = (ROOT / service.directory / "pyproject.toml").read_text(encoding="utf-8")
    assert f'name = "{service.package}"' in pyproject
    assert f"{service.entry_point} = " in pyproject


def test_images_script_reads_the_registry_and_checks_each_image_starts() -> None:
    """make images builds every image from services.toml and runs each once (imports, console script, uid)."""
    script = (ROOT / "deploy" / "docker" / "images.sh").read_text(encoding="utf-8")
    assert "services.toml" in script
    assert "pkgutil.walk_packages" in script
    assert "os.getuid() != 0" in script
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^images:", makefile, re.MULTILINE)
    assert re.search(r"^compose-smoke:", makefile, re.MULTILINE)
