"""A small, strict subset of `kustomize build`, for CI machines without the kustomize binary.

It understands exactly the fields the overlays here use (resources, components, namespace, images, replicas,
patches with strategic merge by name, `$patch: delete`) and refuses any other field, so it can never silently
build something different from what kustomize would. With kustomize installed, use the real thing:
`kustomize build deploy/k8s/overlays/prod` (or `kubectl kustomize ...`).

    uv run python deploy/k8s/kustomize_lite.py deploy/k8s/overlays/prod
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
KNOWN = {"apiVersion", "kind", "resources", "components", "namespace", "images", "replicas", "patches"}
COMPONENT_KNOWN = {"apiVersion", "kind", "resources", "patches"}


class KustomizeError(ValueError):
    pass


def build(directory: Path) -> list[Resource]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - KNOWN
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(_load(path))
    for entry in kustomization.get("components", []):
        resources = apply_component(resources, (directory / entry).resolve())
    for patch in kustomization.get("patches", []):
        resources = apply_patch(resources, directory, patch)
    for image in kustomization.get("images", []):
        set_image(resources, image)
    for replicas in kustomization.get("replicas", []):
        target = find(resources, {"kind": "Deployment", "name": replicas["name"]})
        target["spec"]["replicas"] = replicas["count"]
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] != "Namespace":
                resource.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    _check_unique(resources)
    return resources


def _load(path: Path) -> list[Resource]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def apply_component(resources: list[Resource], directory: Path) -> list[Resource]:
    """A kustomize Component: its resources join the parent's, then its patches apply to all of them
    (before the parent's own patches, images and namespace, as kustomize orders it)."""
    component = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    if component.get("kind") != "Component" or set(component) - COMPONENT_KNOWN:
        raise KustomizeError(f"{directory}: a component needs kind Component and only {sorted(COMPONENT_KNOWN)}")
    resources = [*resources, *(r for entry in component.get("resources", []) for r in _load(directory / entry))]
    for patch in component.get("patches", []):
        resources = apply_patch(resources, directory, patch)
    return resources


def find(resources: list[Resource], target: dict[str, str]) -> Resource:
    matches = [r for r in resources if r["kind"] == target["kind"] and r["metadata"]["name"] == target["name"]]
    if len(matches) != 1:
        raise KustomizeError(f"patch target {target} matches {len(matches)} resources")
    return matches[0]


def apply_patch(resources: list[Resource], directory: Path, patch: dict[str, Any]) -> list[Resource]:
    if set(patch) - {"path"}:
        raise KustomizeError(f"only file patches are supported: {patch}")
    body = yaml.safe_load((directory / patch["path"]).read_text(encoding="utf-8"))
    target = find(resources, {"kind": body["kind"], "name": body["metadata"]["name"]})
    if body.get("$patch") == "delete":
        return [r for r in resources if r is not target]
    merged = merge(target, body)
    return [merged if r is target else r for r in resources]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize does it for the fields used here: maps merge, lists of named items
    merge by name, other lists are replaced, `null` deletes a key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        out_list = copy.deepcopy(base)
        for item in patch:
            index = next((i for i, b in enumerate(out_list) if b["name"] == item["name"]), None)
            if index is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[index] = merge(out_list[index], item)
        return out_list
    return copy.deepcopy(patch)


def set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for resource in resources:
        if resource["kind"] != "Deployment":
            continue
        for container in resource["spec"]["template"]["spec"]["containers"]:
            name, _, _tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"


def _check_unique(resources: list[Resource]) -> None:
    seen: set[tuple[str, str]] = set()
    for r in resources:
        key = (r["kind"], r["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"duplicate resource {key}")
        seen.add(key)


def main() -> int:
    print(yaml.safe_dump_all(build(Path(sys.argv[1])), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
