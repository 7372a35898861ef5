"""Issue 18 #7: each internal service admits only the gateway and its named callers (Kubernetes NetworkPolicies
in deploy/k8s/base/networkpolicy-internal.yaml); the callers match who calls whom in the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "deploy/k8s/base/networkpolicy-internal.yaml"
CALLERS = {
    "pass-service": ({"gateway"}, 8081),
    "list-validator": ({"gateway", "composer"}, 8082),
    "composer": ({"gateway", "dispatcher"}, 8083),
    "dispatcher": ({"gateway", "composer"}, 8084),
    "notifier": ({"gateway", "list-validator"}, 8085),
}


def _policies() -> dict[str, dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(POLICIES.read_text(encoding="utf-8")) if d]
    return {d["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: d for d in documents}


def test_each_internal_service_admits_only_its_callers() -> None:
    policies = _policies()
    assert set(policies) == set(CALLERS)
    for service, (callers, port) in CALLERS.items():
        spec = policies[service]["spec"]
        assert spec["policyTypes"] == ["Ingress"]
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        sources = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in rule["from"]}
        assert sources == callers, service
        assert all(set(peer) == {"podSelector"} for peer in rule["from"])  # no namespace- or IP-wide source


def test_the_policy_file_is_part_of_the_base() -> None:
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/base/kustomization.yaml").read_text(encoding="utf-8"))
    assert POLICIES.name in kustomization["resources"]
