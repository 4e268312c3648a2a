#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests: renders each kustomization with `kubectl
kustomize` (no cluster, no network), validates every object against the pinned API schemas in
schema/ (fields, types, required keys; unknown fields are errors) and applies Quarry's policy.

  check_manifests.py [--kubectl PATH] KUSTOMIZATION_DIR...

Policy (every pod template: Deployment, StatefulSet, Job, CronJob):
  - runs as non-root: pod runAsNonRoot true and a non-zero runAsUser (pod or container);
  - every container and init container: readOnlyRootFilesystem, no privilege escalation, all
    capabilities dropped; cpu and memory requests and a memory limit;
  - images carry an explicit tag (or digest) that is not "latest";
  - containers that expose ports have readiness and liveness probes (workers expose none);
  - a container passing --drain-timeout-ms leaves >= 30 s of terminationGracePeriodSeconds after
    it; quarry-worker containers must pass it;
  - GPU resources (nvidia.com/gpu, amd.com/gpu) are limits (= requests), and the pod selects and
    tolerates GPU nodes;
  - each Deployment/StatefulSet is covered by a PodDisruptionBudget and a NetworkPolicy.
Exit status 0 when every object passes; the errors name the object and the field path.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "schema")
K8S_SCHEMA = os.path.join(SCHEMA_DIR, "kubernetes-v1.28.0.json")
CRD_SCHEMAS = {
    "keda.sh/v1alpha1/ScaledObject": "keda.sh_v1alpha1_ScaledObject.json",
    "monitoring.coreos.com/v1/ServiceMonitor": "monitoring.coreos.com_v1_ServiceMonitor.json",
}
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
DRAIN_MARGIN_S = 30


def render(directory, kubectl="kubectl"):
    """The objects `kubectl kustomize DIRECTORY` renders, in order."""
    exe = shutil.which(kubectl) or kubectl
    try:
        out = subprocess.run([exe, "kustomize", directory], check=True, capture_output=True,
                             text=True).stdout
    except FileNotFoundError:
        raise SystemExit(f"check_manifests: {kubectl} not found (kubectl >= 1.27 with kustomize)")
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"check_manifests: kubectl kustomize {directory} failed:\n{e.stderr}")
    return [d for d in yaml.safe_load_all(out) if d is not None]


def name_of(obj):
    md = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{md.get('name', '?')}"


def format_path(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(object)"


class SchemaValidator:
    def __init__(self):
        with open(K8S_SCHEMA) as f:
            self.k8s = json.load(f)
        self.crds = {}
        for gvk, file in CRD_SCHEMAS.items():
            with open(os.path.join(SCHEMA_DIR, file)) as f:
                self.crds[gvk] = json.load(f)
        self._validators = {}

    def _validator(self, gvk):
        if gvk not in self._validators:
            if gvk in self.crds:
                schema = self.crds[gvk]
            elif gvk in self.k8s["kinds"]:
                schema = {"$ref": "#/definitions/" + self.k8s["kinds"][gvk],
                          "definitions": self.k8s["definitions"]}
            else:
                return None
            self._validators[gvk] = jsonschema.Draft7Validator(schema)
        return self._validators[gvk]

    def errors(self, obj):
        """Schema errors of one object, as 'Kind/name: path: message'."""
        gvk = f"{obj.get('apiVersion', '?')}/{obj.get('kind', '?')}"
        v = self._validator(gvk)
        if v is None:
            return [f"{name_of(obj)}: no schema for {gvk} (pinned: Kubernetes "
                    f"v1.28.0 kinds {sorted(self.k8s['kinds'])} and {sorted(self.crds)})"]
        out = [f"{name_of(obj)}: {format_path(e.absolute_path)}: {e.message}"
               for e in sorted(v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]
        if gvk in self.crds:  # CRD schemas leave metadata open; it is an ObjectMeta
            meta = self._meta_validator()
            out += [f"{name_of(obj)}: metadata.{format_path(e.absolute_path)}: {e.message}"
                    for e in meta.iter_errors(obj.get("metadata", {}))]
        return out

    def _meta_validator(self):
        if "meta" not in self._validators:
            self._validators["meta"] = jsonschema.Draft7Validator(
                {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                 "definitions": self.k8s["definitions"]})
        return self._validators["meta"]


def dig(obj, path):
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def image_tag_problem(image):
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image '{image}' has no tag (it would mean 'latest')"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image '{image}' uses the 'latest' tag"
    return None


def selector_matches(selector, labels):
    if not selector:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        k, op, vals = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def drain_timeout_ms(args):
    for i, a in enumerate(args):
        if a.startswith("--drain-timeout-ms="):
            return int(a.split("=", 1)[1])
        if a == "--drain-timeout-ms" and i + 1 < len(args):
            return int(args[i + 1])
    return None


def pod_policy(obj, template):
    where = name_of(obj)
    errs = []
    spec = template.get("spec") or {}
    psc = spec.get("securityContext") or {}
    containers = [("container", c) for c in spec.get("containers") or []]
    containers += [("initContainer", c) for c in spec.get("initContainers") or []]
    if psc.get("runAsNonRoot") is not True:
        errs.append(f"{where}: pod securityContext.runAsNonRoot must be true")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    gpu_pod = False
    for role, c in containers:
        cw = f"{where}: {role} '{c.get('name')}'"
        csc = c.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        if uid is None or uid == 0:
            errs.append(f"{cw}: runAsUser must be set and non-zero")
        if csc.get("runAsNonRoot") is False:
            errs.append(f"{cw}: runAsNonRoot is false")
        if csc.get("readOnlyRootFilesystem") is not True:
            errs.append(f"{cw}: securityContext.readOnlyRootFilesystem must be true")
        if csc.get("allowPrivilegeEscalation") is not False:
            errs.append(f"{cw}: securityContext.allowPrivilegeEscalation must be false")
        if csc.get("privileged"):
            errs.append(f"{cw}: privileged")
        if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
            errs.append(f"{cw}: securityContext.capabilities.drop must contain ALL")
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for r in ("cpu", "memory"):
            if r not in req:
                errs.append(f"{cw}: resources.requests.{r} is not set")
        if "memory" not in lim:
            errs.append(f"{cw}: resources.limits.memory is not set")
        problem = image_tag_problem(c.get("image", ""))
        if problem:
            errs.append(f"{cw}: {problem}")
        if role == "container" and c.get("ports"):
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    errs.append(f"{cw}: exposes ports but has no {probe}")
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        drain = drain_timeout_ms(args)
        if any(a.endswith("quarry-worker") for a in args) and drain is None:
            errs.append(f"{cw}: quarry-worker without --drain-timeout-ms")
        if drain is not None and drain / 1000 + DRAIN_MARGIN_S > grace:
            errs.append(f"{cw}: --drain-timeout-ms={drain} leaves less than {DRAIN_MARGIN_S} s of "
                        f"terminationGracePeriodSeconds={grace}")
        for g in GPU_RESOURCES:
            if g in req or g in lim:
                gpu_pod = True
                if str(lim.get(g)) != str(req.get(g, lim.get(g))) or g not in lim:
                    errs.append(f"{cw}: {g} must be a limit (equal to its request)")
    if gpu_pod:
        if not spec.get("nodeSelector") and not spec.get("affinity"):
            errs.append(f"{where}: GPU pod without nodeSelector/affinity for GPU nodes")
        tolerated = {t.get("key") for t in spec.get("tolerations") or []}
        if not tolerated & set(GPU_RESOURCES):
            errs.append(f"{where}: GPU pod does not tolerate the GPU nodes' taint")
    return errs


def policy_errors(objs):
    errs = []
    pdbs = [o for o in objs if o.get("kind") == "PodDisruptionBudget"]
    netpols = [o for o in objs if o.get("kind") == "NetworkPolicy"]
    for obj in objs:
        path = POD_TEMPLATE_PATHS.get(obj.get("kind"))
        if not path:
            continue
        template = dig(obj, path) or {}
        errs += pod_policy(obj, template)
        if obj["kind"] in ("Deployment", "StatefulSet"):
            labels = (template.get("metadata") or {}).get("labels") or {}
            ns = (obj.get("metadata") or {}).get("namespace")
            same_ns = lambda o: (o.get("metadata") or {}).get("namespace") == ns
            if not any(same_ns(p) and selector_matches(dig(p, ("spec", "selector")), labels)
                       for p in pdbs):
                errs.append(f"{name_of(obj)}: no PodDisruptionBudget selects its pods")
            if not any(same_ns(n) and (dig(n, ("spec", "podSelector")) == {} or selector_matches(
                    dig(n, ("spec", "podSelector")), labels)) for n in netpols):
                errs.append(f"{name_of(obj)}: no NetworkPolicy selects its pods")
    return errs


def check(directory, kubectl="kubectl", validator=None):
    """(objects, errors) for one kustomization directory."""
    validator = validator or SchemaValidator()
    objs = render(directory, kubectl)
    errs = []
    for o in objs:
        errs += validator.errors(o)
    errs += policy_errors(objs)
    return objs, errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    validator = SchemaValidator()
    failed = False
    for d in a.dirs:
        objs, errs = check(d, a.kubectl, validator)
        kinds = sorted({o.get("kind") for o in objs})
        if errs:
            failed = True
            print(f"{d}: {len(errs)} problem(s) in {len(objs)} objects:")
            for e in errs:
                print(f"  {e}")
        else:
            print(f"{d}: {len(objs)} objects ({', '.join(kinds)}): schema and policy ok")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
