"""Schema validation of rendered objects: built-in kinds against the Kubernetes OpenAPI schemas
(kubernetes-validate), Strimzi and KEDA kinds against the `openAPIV3Schema` of their CRDs.

Both are strict about unknown fields, as `kubectl apply` is (server-side field validation
`Strict`): a misspelt field is an error a cluster would report, not something to prune silently.
Built-ins are validated for the oldest Kubernetes the project supports, so nothing newer sneaks in.
What a schema cannot express (CEL rules, defaulting, admission webhooks) is only proved on a
cluster.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Typed as Any where stubs are missing (types-jsonschema is not a dev dependency yet).
import jsonschema
import kubernetes_validate
import yaml

from pytest_medpubsub.k8s.findings import Finding
from pytest_medpubsub.k8s.objects import Manifest, api_group, object_id

Validator = Any

KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the project supports (docs/design.md §2.6): built-ins must be valid
there."""


def is_builtin(obj: Mapping[str, Any]) -> bool:
    """Core and `*.k8s.io` groups (and the unqualified ones like `apps`) are Kubernetes' own."""
    group = api_group(obj)
    return "." not in group or group.endswith(".k8s.io")


def builtin_findings(obj: Manifest) -> list[Finding]:
    """The first schema violation of a built-in object (kubernetes-validate stops at one)."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [Finding(object_id(obj), "schema", f"{_path(error.absolute_path)}: {error.message}")]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [Finding(object_id(obj), "schema", str(error.message))]
    return []


@dataclass(frozen=True)
class CrdSchemas:
    """Validators for the custom kinds of a folder of CRD files, keyed by group and kind."""

    directory: Path
    validators: Mapping[tuple[str, str], Mapping[str, Validator]]

    @classmethod
    def load(cls, directory: Path) -> CrdSchemas:
        """Read every CRD under `directory` (recursively), with its `<singular>_patch.yaml`."""
        return _load(directory.resolve())

    def groups(self) -> set[str]:
        return {group for group, _ in self.validators}

    def findings(self, obj: Manifest) -> list[Finding]:
        """Every violation of `obj` against its CRD, or one finding when no CRD serves it."""
        group = api_group(obj)
        version = str(obj.get("apiVersion", "")).rpartition("/")[2]
        served = self.validators.get((group, str(obj.get("kind"))))
        if served is None:
            return [Finding(object_id(obj), "schema", f"no CRD for {obj.get('kind')} in {group}")]
        validator = served.get(version)
        if validator is None:
            return [
                Finding(
                    object_id(obj),
                    "schema",
                    f"{obj.get('apiVersion')} is not served by the CRD (served: "
                    f"{', '.join(sorted(served))})",
                )
            ]
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        return [
            Finding(object_id(obj), "schema", f"{_path(error.absolute_path)}: {error.message}")
            for error in errors
        ]


@functools.cache
def _load(directory: Path) -> CrdSchemas:
    validators: dict[tuple[str, str], dict[str, Validator]] = {}
    for path in sorted(directory.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            crd = document
            patch = path.parent / f"{crd['spec']['names']['singular']}_patch.yaml"
            if patch.exists():
                crd = apply_json_patch(crd, yaml.safe_load(patch.read_text("utf-8")))
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", False):
                    continue
                schema = to_json_schema(version["schema"]["openAPIV3Schema"])
                validator_class = jsonschema.validators.validator_for(schema)
                validators.setdefault((spec["group"], spec["names"]["kind"]), {})[
                    version["name"]
                ] = validator_class(schema)
    return CrdSchemas(directory, validators)


def to_json_schema(node: Any) -> Any:
    """Turn a structural OpenAPI v3 schema into a JSON Schema that rejects what the API server
    rejects: unknown fields (unless `x-kubernetes-preserve-unknown-fields`), nulls (unless
    `nullable`), and int-or-string values of any other type."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: to_json_schema(value) for key, value in node.items()}
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.pop("anyOf", None)
        schema["type"] = ["integer", "string"]
    if schema.pop("nullable", False) and "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"]
    preserve = schema.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        schema["additionalProperties"] = False
    return schema


def apply_json_patch(document: Any, operations: Iterable[Mapping[str, Any]]) -> Any:
    """The `add` and `remove` operations of RFC 6902 (what KEDA's CRD kustomize patch uses)."""
    patched = copy.deepcopy(document)
    for operation in operations:
        *parents, last = [
            step.replace("~1", "/").replace("~0", "~") for step in operation["path"].split("/")[1:]
        ]
        node: Any = patched
        for step in parents:
            node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        if operation["op"] == "add":
            if isinstance(node, list):
                node.insert(len(node) if last == "-" else int(last), operation["value"])
            else:
                node[last] = operation["value"]
        elif operation["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise ValueError(f"unsupported JSON patch operation {operation['op']!r}")
    return patched


def schema_findings(objects: Iterable[Manifest], crds: CrdSchemas | None) -> list[Finding]:
    """Validate every object; custom kinds only when `crds` is given (else they are skipped)."""
    findings: list[Finding] = []
    for obj in objects:
        if is_builtin(obj):
            findings += builtin_findings(obj)
        elif crds is not None:
            findings += crds.findings(obj)
    return findings


def _path(path: Iterable[Any]) -> str:
    steps = [f"[{step}]" if isinstance(step, int) else f".{step}" for step in path]
    return "".join(steps).lstrip(".") or "(object)"
