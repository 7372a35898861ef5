"""Kubernetes: the base is current, each overlay builds and passes the Kubernetes schemas, and the workloads
carry the probes, limits, security settings, budgets, policies and autoscaling the issue asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from tests.deploy_support import ROOT, load_script

from isseimail_dispatcher.scheduler import BATCH_QUEUE

K8S = ROOT / "deploy" / "k8s"
render_base = load_script("deploy/k8s/render_base.py")
kustomize = load_script("deploy/k8s/kustomize_lite.py")
OVERLAYS = ["dev", "prod"]
OPTIONAL = {"clamav"}  # deploy/k8s/components: third-party workloads, checked by their own test
KUBERNETES_VERSION = "1.31.0"


def built(overlay: str) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = kustomize.build(K8S / "overlays" / overlay)
    return resources


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def test_base_is_current_with_the_settings_classes() -> None:
    """deploy/k8s/base/ is what render_base.py writes from today's settings (run it after adding a setting)."""
    for name, text in render_base.render().items():
        path = K8S / "base" / name
        assert path.read_text(encoding="utf-8") == text, f"stale {path}: uv run python deploy/k8s/render_base.py"
    assert {p.name for p in (K8S / "base").glob("*.yaml")} == set(render_base.render())


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
    """prod's optional ClamAV: probes, limits, hardened pod, a budget; the composer is pointed at it and is the
    only pod that may reach it; dev (without the component) leaves scanning unset."""
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
    assert security["capabilities"]["drop"] == ["ALL"]
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


def test_kustomize_lite_refuses_a_component_that_is_not_one(tmp_path: Path) -> None:
    """A components entry must point at a kind: Component (a Kustomization there is an error, not merged)."""
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    )
    (tmp_path / "kustomization.yaml").write_text("components:\n  - c\n")
    with pytest.raises(kustomize.KustomizeError, match="Component"):
        kustomize.build(tmp_path)


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


def test_kustomize_lite_refuses_what_it_does_not_understand(tmp_path: Path) -> None:
    """An overlay field the small builder does not implement is an error, never silently ignored."""
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n", encoding="utf-8")
    with pytest.raises(kustomize.KustomizeError, match="commonLabels"):
        kustomize.build(tmp_path)


def test_k8s_readme_explains_scaling_rollout_and_draining() -> None:
    """deploy/k8s/README.md tells how to scale, roll out and drain a worker safely."""
    text = (K8S / "README.md").read_text(encoding="utf-8").lower()
    for needed in ("scale", "rollout", "drain", "keda", "kustomize build"):
        assert needed in text, needed
