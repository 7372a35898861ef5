"""Writes deploy/k8s/base/ from the services' own settings classes and one table of workloads.

Why generated: every ISSEIMAIL_* setting must reach the pods either through the ConfigMap or as a reference
to the Secret, and the settings grow with every issue. This script reads the settings classes, so a new
setting lands in the ConfigMap (with its default) or in the Secret references (SecretStr fields and URLs
that can carry credentials) the next time it runs. tests/test_deploy_k8s.py fails when base/ is stale:
`uv run python deploy/k8s/render_base.py` and commit.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel
from pydantic_core import PydanticUndefined

from isseimail_testing.services import Service, packages, services

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
NAMESPACE = "isseimail"
PART_OF = "isseimail"
UID = 10001  # the images' user (the Dockerfile's UID build argument)

# services.toml (the one registry of services): settings classes, ports, images and arguments
SETTINGS_CLASSES = {s.name: s.settings for s in packages()}

# Settings that are secret although their type is not SecretStr: URLs that may carry a password.
SECRET_FIELDS = {"database_url", "amqp_url", "smtp_relay"}

# In-cluster values instead of the developer defaults (127.0.0.1 ...). Overlays patch the rest.
CLUSTER_VALUES = {
    "ISSEIMAIL_HTTP_HOST": "0.0.0.0",
    "ISSEIMAIL_PASS_URL": "http://pass-service:8081",
    "ISSEIMAIL_LIST_VALIDATOR_URL": "http://list-validator:8082",
    "ISSEIMAIL_COMPOSER_URL": "http://composer:8083",
    "ISSEIMAIL_DISPATCHER_URL": "http://dispatcher:8084",
    "ISSEIMAIL_NOTIFIER_URL": "http://notifier:8085",
    "ISSEIMAIL_BOUNCE_LISTEN_HOST": "0.0.0.0",
    "ISSEIMAIL_LOGIN_URL": "https://isseimail.example.jp/login",
    "ISSEIMAIL_PUBLIC_URL": "https://isseimail.example.jp",
    "ISSEIMAIL_COOKIE_SECURE": "true",
    "ISSEIMAIL_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class Workload:
    name: str  # Deployment, Service and component label
    image: str  # repository of the image (isseimail/<image>), built from the one Dockerfile
    settings: str  # key of SETTINGS_CLASSES
    port: int
    args: tuple[str, ...] = ()
    replicas: int = 2
    cpu: tuple[str, str] = ("100m", "1")
    memory: tuple[str, str] = ("192Mi", "512Mi")
    extra_ports: tuple[tuple[str, int], ...] = ()
    service: bool = True  # reached by other pods through a Service
    grace_seconds: int = 30


# What only Kubernetes needs, per process of services.toml (names, ports, images, arguments come from there).
# The SMTP workers (dispatcher-worker): the dispatcher image with `worker`, no Service, scaled by the HPA (base)
# or KEDA (prod overlay). The notifier also listens for bounces on 2525.
SIZING: dict[str, dict[str, Any]] = {
    "list-validator": {"memory": ("256Mi", "768Mi")},
    "composer": {"memory": ("256Mi", "768Mi")},
    "dispatcher-worker": {"cpu": ("250m", "1"), "memory": ("256Mi", "768Mi"), "service": False, "grace_seconds": 90},
    "notifier": {"extra_ports": (("smtp-bounce", 2525),)},
}
# Kubernetes order of the base files (gateway first, as before); every process of the registry is one workload
ORDER = ("gateway", "pass-service", "list-validator", "composer", "dispatcher", "dispatcher-worker", "notifier")


def workload(process: Service) -> Workload:
    return Workload(
        process.name, process.image, process.image, process.port, args=process.args, **SIZING.get(process.name, {})
    )


WORKLOADS = tuple(
    workload(p) for p in sorted(services(), key=lambda p: ORDER.index(p.name) if p.name in ORDER else len(ORDER))
)


def settings_class(key: str) -> type[BaseModel]:
    module, name = SETTINGS_CLASSES[key].split(":")
    cls: type[BaseModel] = getattr(importlib.import_module(module), name)
    return cls


def env_name(field_name: str, alias: object) -> str:
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    return f"ISSEIMAIL_{field_name.upper()}"


def env_value(value: object) -> str | None:
    """The environment form of a default; None when the setting is optional and unset."""
    if value is None or value is PydanticUndefined:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) and all(isinstance(v, tuple) for v in value):
        return ",".join(f"{h}:{p}" for h, p in value)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(
            {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in value.items()}, sort_keys=True
        )
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    return str(value)


@dataclass(frozen=True)
class Setting:
    env: str
    secret: bool
    required: bool
    default: str | None
    description: str


def settings_of(key: str) -> list[Setting]:
    found = []
    for name, field in settings_class(key).model_fields.items():
        default = field.get_default(call_default_factory=True)
        annotation = str(field.annotation)
        secret = name in SECRET_FIELDS or "SecretStr" in annotation
        found.append(
            Setting(
                env=env_name(name, field.validation_alias),
                secret=secret,
                # a secret with a development default (or a random one per process) must be set in a cluster
                required=default is not None,
                default=None if secret else env_value(default),
                description=field.description or "",
            )
        )
    return found


def all_settings() -> dict[str, Setting]:
    merged: dict[str, Setting] = {}
    for key in SETTINGS_CLASSES:
        for setting in settings_of(key):
            known = merged.get(setting.env)
            if known is not None and (known.default, known.secret) != (setting.default, setting.secret):
                raise ValueError(f"{setting.env} differs between services: {known} / {setting}")
            merged[setting.env] = setting
    return merged


def labels(workload: Workload) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": workload.name,
        "app.kubernetes.io/component": workload.name,
        "app.kubernetes.io/part-of": PART_OF,
    }


def selector(workload: Workload) -> dict[str, str]:
    return {"app.kubernetes.io/name": workload.name, "app.kubernetes.io/part-of": PART_OF}


def probe(path: str, port: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def secret_env(key: str) -> list[dict[str, Any]]:
    """Secret settings of one service, each a reference to a key of the Secret isseimail-secrets."""
    return [
        {
            "name": s.env,
            "valueFrom": {"secretKeyRef": {"name": "isseimail-secrets", "key": s.env, "optional": not s.required}},
        }
        for s in settings_of(key)
        if s.secret
    ]


def deployment(workload: Workload) -> dict[str, Any]:
    ports = [{"name": "http", "containerPort": workload.port}] + [
        {"name": name, "containerPort": port} for name, port in workload.extra_ports
    ]
    container: dict[str, Any] = {
        "name": workload.name,
        "image": f"isseimail/{workload.image}:0.1.0",
        "imagePullPolicy": "IfNotPresent",
        "ports": ports,
        "envFrom": [{"configMapRef": {"name": "isseimail-config"}}],
        "env": [
            *secret_env(workload.settings),
            # SIGTERM waits this long for in-flight work; the pod's grace period is a little longer
            {"name": "ISSEIMAIL_SHUTDOWN_GRACE_SECONDS", "value": str(workload.grace_seconds - 10)},
        ],
        "startupProbe": probe("/healthz", workload.port, 2, 60),  # migrations run at start-up
        "livenessProbe": probe("/healthz", workload.port, 10, 3),
        "readinessProbe": probe("/readyz", workload.port, 5, 2),
        "resources": {
            "requests": {"cpu": workload.cpu[0], "memory": workload.memory[0]},
            "limits": {"cpu": workload.cpu[1], "memory": workload.memory[1]},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir: the root fs is read-only
    }
    if workload.args:
        container["args"] = list(workload.args)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload.name, "labels": labels(workload)},
        "spec": {
            "replicas": workload.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(workload)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels(workload),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(workload.port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": workload.grace_seconds,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "fsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector(workload)},
                        }
                    ],
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                },
            },
        },
    }


def service(workload: Workload) -> dict[str, Any]:
    ports = [{"name": "http", "port": workload.port, "targetPort": "http"}] + [
        {"name": name, "port": port, "targetPort": name} for name, port in workload.extra_ports
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": workload.name, "labels": labels(workload)},
        "spec": {"selector": selector(workload), "ports": ports},
    }


def pdb(workload: Workload) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": workload.name, "labels": labels(workload)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(workload)}},
    }


def worker_hpa(workload: Workload) -> dict[str, Any]:
    """The fallback autoscaler on CPU; the prod overlay replaces it by KEDA on the work queue's depth."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": workload.name, "labels": labels(workload)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload.name},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                }
            ],
            "behavior": {
                # scale down slowly: a worker stopping mid-batch redelivers its batch
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
    }


def config_map() -> dict[str, Any]:
    data = {}
    unset = []
    for env, setting in sorted(all_settings().items()):
        if setting.secret:
            continue
        value = CLUSTER_VALUES.get(env, setting.default)
        if value:
            data[env] = value
        else:  # optional and empty by default: an empty string would not parse as a list everywhere
            unset.append(env)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "isseimail-config",
            "labels": {"app.kubernetes.io/part-of": PART_OF},
            # the settings deliberately left out (empty by default): add them to an overlay to use them
            "annotations": {"isseimail/unset-settings": ",".join(unset)},
        },
        "data": data,
    }


def network_policies() -> list[dict[str, Any]]:
    part_of = {"app.kubernetes.io/part-of": PART_OF}

    def policy(name: str, pod_labels: dict[str, str], ingress: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "labels": part_of},
            "spec": {"podSelector": {"matchLabels": pod_labels}, "policyTypes": ["Ingress"], "ingress": ingress},
        }

    http_ports = [{"protocol": "TCP", "port": w.port} for w in WORKLOADS]
    return [
        # nothing reaches any pod of the namespace unless a policy below allows it
        policy("default-deny-ingress", {}, []),
        # the gateway is the only workload reached from outside (Ingress controller, users)
        policy(
            "gateway-from-anywhere",
            {"app.kubernetes.io/name": "gateway"},
            [{"ports": [{"protocol": "TCP", "port": 8080}]}],
        ),
        # the services call each other (internal HTTP) inside the namespace only
        policy(
            "isseimail-internal",
            part_of,
            [{"from": [{"podSelector": {"matchLabels": part_of}}], "ports": http_ports}],
        ),
        # Prometheus in the monitoring namespace scrapes /metrics
        policy(
            "prometheus-scrape",
            part_of,
            [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                    "ports": http_ports,
                }
            ],
        ),
        # bounces arrive from the company's inbound mail relay only; overlays set its address
        policy(
            "notifier-bounces-from-relay",
            {"app.kubernetes.io/name": "notifier"},
            [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"protocol": "TCP", "port": 2525}]}],
        ),
    ]


HEADER = "# GENERATED by deploy/k8s/render_base.py: edit the script, not this file.\n"


def documents() -> dict[str, list[dict[str, Any]]]:
    # namespace.yaml and ingress.yaml are plain YAML (nothing to compute); these are derived from the code
    files: dict[str, list[dict[str, Any]]] = {
        "configmap.yaml": [config_map()],
        "networkpolicy.yaml": network_policies(),
    }
    for workload in WORKLOADS:
        docs = [deployment(workload), pdb(workload)]
        if workload.service:
            docs.insert(1, service(workload))
        if workload.name == "dispatcher-worker":
            docs.append(worker_hpa(workload))
        files[f"{workload.name}.yaml"] = docs
    return files


def render() -> dict[str, str]:
    docs = documents()
    # base/kustomization.yaml is plain (it also lists the hand-written manifests): not written here
    return {
        name: HEADER + yaml.safe_dump_all(content, sort_keys=False, allow_unicode=True, width=120)
        for name, content in docs.items()
    }


def secret_keys() -> list[str]:
    """Every key the Secret isseimail-secrets may hold (required and optional)."""
    return sorted(env for env, s in all_settings().items() if s.secret)


def main() -> int:
    for name, text in render().items():
        (BASE / name).write_text(text, encoding="utf-8")
        print(f"wrote deploy/k8s/base/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
