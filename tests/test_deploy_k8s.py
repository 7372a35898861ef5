"""Kubernetes: the base is current, each overlay builds with real kustomize (`kubectl kustomize`) and passes the
Kubernetes schemas, and the workloads carry the probes, limits, security settings, budgets, policies,
autoscaling and the one public Ingress the issues ask for."""

from __future__ import annotations

import functools
import urllib.parse
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.deploy_support import ROOT, load_script, run, tool

from isseimail_dispatcher.work_messages import BATCH_QUEUE

K8S = ROOT / "deploy" / "k8s"
render_base = load_script("deploy/k8s/render_base.py")
OVERLAYS = ["dev", "prod"]
OPTIONAL = {"clamav"}  # deploy/k8s/components: third-party workloads, checked by their own test
KUBERNETES_VERSION = "1.31.0"
PUBLIC_PATH = "/unsubscribe/"


@functools.cache
def rendered(directory: Path) -> str:
    """`kubectl kustomize <dir>` (kustomize v5 inside kubectl): what `kubectl apply -k` would send."""
    result = run([tool("kubectl"), "kustomize", str(directory)])
    assert result.returncode == 0, result.stderr
    return result.stdout


def built(overlay: str) -> list[dict[str, Any]]:
    """The overlay's objects, parsed fresh each time (tests may change them)."""
    return [d for d in yaml.safe_load_all(rendered(K8S / "overlays" / overlay)) if d]


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def test_base_is_current_with_the_settings_classes() -> None:
    """deploy/k8s/base/ is what render_base.py writes from today's settings (run it after adding a setting)."""
    for name, text in render_base.render().items():
        path = K8S / "base" / name
        assert path.read_text(encoding="utf-8") == text, f"stale {path}: uv run python deploy/k8s/render_base.py"


def test_base_kustomization_lists_every_manifest_of_base() -> None:
    """base/kustomization.yaml is plain: every generated file and every hand-written manifest is listed."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert set(render_base.render()) <= files


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_resources_pass_the_kubernetes_schemas(overlay: str) -> None:
    """Every built resource of a core kind validates (strict: no unknown fields) against Kubernetes' schemas."""
    resources = built(overlay)
    checked = 0
    for resource in resources:
        if resource["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked by test_prod_workers_autoscale_on_the_batch_queue_with_keda
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 25
    assert all(r["metadata"].get("namespace") == "isseimail" for r in resources if r["kind"] != "Namespace")


def test_schema_check_rejects_a_broken_resource() -> None:
    """The schema check is real: a typo'd field in a Deployment fails it."""
    deployment = of_kind(built("prod"), "Deployment")["gateway"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_probes_limits_security_and_a_budget(overlay: str) -> None:
    """Readiness on /readyz, liveness on /healthz, requests and limits, non-root read-only containers, a PDB."""
    resources = built(overlay)
    deployments = {n: d for n, d in of_kind(resources, "Deployment").items() if n not in OPTIONAL}
    assert set(deployments) == {w.name for w in render_base.WORKLOADS}
    budgets = of_kind(resources, "PodDisruptionBudget")
    services = of_kind(resources, "Service")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, name
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert budgets[name]["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        port = container["ports"][0]["containerPort"]
        assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        if name != "dispatcher-worker":
            assert services[name]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    worker = deployments["dispatcher-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["worker"]
    assert worker["image"].split(":")[0].endswith("isseimail/dispatcher")


def test_every_setting_reaches_the_pods_through_the_configmap_or_the_secret() -> None:
    """Each ISSEIMAIL_* setting of every service is in the ConfigMap, listed as unset, or a Secret reference;
    the dev Secret holds every required secret."""
    resources = built("dev")
    config = of_kind(resources, "ConfigMap")["isseimail-config"]
    unset = set(config["metadata"]["annotations"]["isseimail/unset-settings"].split(","))
    secret = of_kind(resources, "Secret")["isseimail-secrets"]
    deployments = of_kind(resources, "Deployment")
    for workload in render_base.WORKLOADS:
        container = deployments[workload.name]["spec"]["template"]["spec"]["containers"][0]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e}
        for setting in render_base.settings_of(workload.settings):
            if setting.secret:
                assert refs[setting.env]["name"] == "isseimail-secrets", setting.env
                assert refs[setting.env]["optional"] is not setting.required
                if setting.required:
                    assert setting.env in secret["stringData"], setting.env
            else:
                assert setting.env in config["data"] or setting.env in unset, setting.env
    assert not {"ISSEIMAIL_DATABASE_URL", "ISSEIMAIL_AMQP_URL", "ISSEIMAIL_SMTP_RELAY"} & set(config["data"])
    assert not [k for k in config["data"] if k.endswith(("_SECRET", "_PASSWORD", "_KEY"))]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_reachable_from_outside(overlay: str) -> None:
    """Default deny; the one rule without a source is the gateway's; bounces only from the relay's address."""
    policies = of_kind(built(overlay), "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {"matchLabels": {}},
        "policyTypes": ["Ingress"],
        "ingress": [],
    }
    open_to_all = [
        p["spec"]["podSelector"]["matchLabels"]
        for p in policies.values()
        for rule in p["spec"]["ingress"]
        if "from" not in rule
    ]
    assert open_to_all == [{"app.kubernetes.io/name": "gateway"}]
    bounce = policies["notifier-bounces-from-relay"]["spec"]["ingress"][0]
    assert bounce["ports"] == [{"protocol": "TCP", "port": 2525}]
    assert set(bounce["from"][0]) == {"ipBlock"}


def test_clamav_component_scans_for_the_composer_only() -> None:
    """prod's optional ClamAV: probes, limits, a non-root hardened pod, a budget; the composer is pointed at it
    and is the only pod that may reach it; dev (without the component) leaves scanning unset."""
    resources = built("prod")
    deployment = of_kind(resources, "Deployment")["clamav"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("clamav/clamav:")
    assert not container["image"].endswith(":latest")
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}  # nothing added back: no user switch as root
    assert security["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 100  # the official image's clamav user
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert labels.get("app.kubernetes.io/part-of") != "isseimail"  # never a source in isseimail-internal
    assert of_kind(resources, "PodDisruptionBudget")["clamav"]["spec"]["selector"]["matchLabels"] == labels
    service = of_kind(resources, "Service")["clamav"]
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["port"] == 3310
    config = of_kind(resources, "ConfigMap")["isseimail-config"]
    assert config["data"]["ISSEIMAIL_CLAMD_URL"] == "tcp://clamav:3310"
    policy = of_kind(resources, "NetworkPolicy")["clamav-from-composer"]["spec"]
    assert policy["podSelector"]["matchLabels"] == labels
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/name": "composer", "app.kubernetes.io/part-of": "isseimail"}
            }
        }
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3310}]
    dev = built("dev")
    assert "clamav" not in of_kind(dev, "Deployment")
    assert "ISSEIMAIL_CLAMD_URL" not in of_kind(dev, "ConfigMap")["isseimail-config"]["data"]


def test_base_autoscales_workers_on_cpu() -> None:
    """The base's fallback: an HPA on CPU for the SMTP workers (dev keeps it, smaller)."""
    hpa = of_kind(built("dev"), "HorizontalPodAutoscaler")["dispatcher-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "dispatcher-worker"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


def test_prod_workers_autoscale_on_the_batch_queue_with_keda() -> None:
    """prod: a KEDA ScaledObject with the RabbitMQ trigger on the dispatcher's real batch queue replaces
    the CPU HPA, authenticated from the Secret."""
    resources = built("prod")
    assert "dispatcher-worker" not in of_kind(resources, "HorizontalPodAutoscaler")
    scaled = of_kind(resources, "ScaledObject")["dispatcher-worker"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "dispatcher-worker"
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == BATCH_QUEUE
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert int(trigger["metadata"]["value"]) >= 1
    auth = of_kind(resources, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "isseimail-secrets", "key": "ISSEIMAIL_AMQP_URL"}
    ]
    assert "isseimail-secrets" not in of_kind(resources, "Secret"), "prod secrets are never in the repository"


def test_k8s_readme_explains_scaling_rollout_and_draining() -> None:
    """deploy/k8s/README.md tells how to scale, roll out and drain a worker safely."""
    text = (K8S / "README.md").read_text(encoding="utf-8").lower()
    for needed in ("scale", "rollout", "drain", "keda", "kubectl kustomize"):
        assert needed in text, needed


def public_routes(resources: list[dict[str, Any]]) -> list[tuple[str | None, str, str, str, int]]:
    """Every route of every Ingress: (host, path, pathType, service, port); a default backend is a route too."""
    routes: list[tuple[str | None, str, str, str, int]] = []
    for ingress in of_kind(resources, "Ingress").values():
        spec = ingress["spec"]
        if "defaultBackend" in spec:
            backend = spec["defaultBackend"]["service"]
            routes.append((None, "*", "default", backend["name"], backend["port"]["number"]))
        for rule in spec.get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                routes.append(
                    (rule.get("host"), path["path"], path["pathType"], backend["name"], backend["port"]["number"])
                )
    return routes


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_internet_reaches_exactly_unsubscribe_of_the_gateway(overlay: str) -> None:
    """Rendered by kustomize: one Ingress, one route, /unsubscribe/ (Prefix) to the gateway's Service port; no
    default backend, no other path; the port is the one the gateway's Service and container serve."""
    resources = built(overlay)
    routes = public_routes(resources)
    assert [(path, kind, service, port) for _, path, kind, service, port in routes] == [
        (PUBLIC_PATH, "Prefix", "gateway", 8080)
    ], routes
    (host,) = {host for host, *_ in routes}
    assert host, "a rule without a host answers for every name"
    service = of_kind(resources, "Service")["gateway"]
    assert [p["port"] for p in service["spec"]["ports"]] == [8080]
    if overlay == "prod":  # the unsubscribe links in the mails point at ISSEIMAIL_PUBLIC_URL
        public_url = of_kind(resources, "ConfigMap")["isseimail-config"]["data"]["ISSEIMAIL_PUBLIC_URL"]
        assert urllib.parse.urlsplit(public_url).hostname == host
        (tls,) = of_kind(resources, "Ingress")["gateway-public-unsubscribe"]["spec"]["tls"]
        assert tls["hosts"] == [host]


def test_the_public_route_check_catches_an_extra_path_or_a_default_backend() -> None:
    """The check above is real: a second path or a default backend shows up as a route."""
    resources = built("prod")
    ingress = of_kind(resources, "Ingress")["gateway-public-unsubscribe"]
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    paths.append({**paths[0], "path": "/"})
    ingress["spec"]["defaultBackend"] = {"service": {"name": "gateway", "port": {"number": 8080}}}
    routes = public_routes(resources)
    assert ("isseimail.example.jp", "/", "Prefix", "gateway", 8080) in routes
    assert (None, "*", "default", "gateway", 8080) in routes
