#!/usr/bin/env python3
"""Writes the pinned, trimmed schemas check_manifests.py validates against (run by hand when
the pinned versions change; the output is committed, so the checks need no network).

  make_schema.py K8S_SWAGGER_JSON SCALEDOBJECT_JSON SERVICEMONITOR_JSON OUT_DIR

K8S_SWAGGER_JSON: Kubernetes' OpenAPI v2 document (api/openapi-spec/swagger.json of a release;
the committed file comes from v1.28.0, as published with enum lists in the public repository
tommy351/kubernetes-openapi-spec, openapi/1.28.0.json). Only the definitions reachable from KINDS are kept,
descriptions are dropped, and every object with declared properties becomes closed
(additionalProperties: false), as the API server's strict field validation treats it, so a
typo'd field is an error. IntOrString and Quantity accept a string or a number, as the API does.
SCALEDOBJECT_JSON / SERVICEMONITOR_JSON: JSON schemas of the KEDA ScaledObject (keda.sh/v1alpha1)
and Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1) CRDs (the openAPIV3Schema of
their CustomResourceDefinitions, closed the same way), descriptions dropped.
"""
import json
import sys

KINDS = {  # (group, version, kind) the manifests may use
    ("", "v1", "Namespace"), ("", "v1", "ServiceAccount"), ("", "v1", "Service"),
    ("", "v1", "PersistentVolumeClaim"), ("", "v1", "ConfigMap"), ("", "v1", "Secret"),
    ("apps", "v1", "Deployment"), ("apps", "v1", "StatefulSet"),
    ("batch", "v1", "Job"), ("batch", "v1", "CronJob"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"),
}
OPEN_TYPES = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": ["string", "integer"]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": ["string", "number"]},
}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def close(node):
    """additionalProperties: false on every object schema that lists its properties."""
    if isinstance(node, dict):
        out = {k: close(v) for k, v in node.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [close(v) for v in node]
    return node


def refs(node, out):
    if isinstance(node, dict):
        r = node.get("$ref")
        if r:
            out.add(r.split("/")[-1])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    swagger_path, scaledobject_path, servicemonitor_path, out_dir = sys.argv[1:5]
    swagger = json.load(open(swagger_path))
    defs = swagger["definitions"]
    roots = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            key = (gvk["group"], gvk["version"], gvk["kind"])
            if key in KINDS and name.startswith("io.k8s.api."):
                roots["/".join(filter(None, key[:2])) + "/" + key[2]] = name
    missing = {"/".join(filter(None, k[:2])) + "/" + k[2] for k in KINDS} - set(roots)
    if missing:
        sys.exit(f"no definition for {sorted(missing)}")
    keep, todo = set(), list(roots.values()) + ["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        found = set()
        refs(defs[name], found)
        todo.extend(found - keep)
    out = {}
    for name in sorted(keep):
        d = OPEN_TYPES.get(name) or close(strip(defs[name]))
        d.pop("x-kubernetes-group-version-kind", None)
        out[name] = d
    doc = {
        "source": f"Kubernetes {swagger['info']['version']} api/openapi-spec/swagger.json, "
                  "trimmed and closed by deploy/k8s/check/make_schema.py",
        "kinds": dict(sorted(roots.items())),
        "definitions": out,
    }
    version = swagger["info"]["version"]
    with open(f"{out_dir}/kubernetes-{version}.json", "w") as f:
        json.dump(doc, f, indent=0, sort_keys=True)
        f.write("\n")
    for path, name in ((scaledobject_path, "keda.sh_v1alpha1_ScaledObject"),
                       (servicemonitor_path, "monitoring.coreos.com_v1_ServiceMonitor")):
        schema = close(strip(json.load(open(path))))
        with open(f"{out_dir}/{name}.json", "w") as f:
            json.dump(schema, f, indent=0, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
