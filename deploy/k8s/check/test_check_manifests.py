#!/usr/bin/env python3
"""The checks of check_manifests.py catch what they claim to: each test breaks one thing in a
rendered overlay, or in a copy of the kustomize sources, and expects the error that names it.
Run: python3 -m unittest -v test_check_manifests (from this folder; needs kubectl)."""
import copy
import os
import shutil
import tempfile
import unittest

import check_manifests as cm

K8S = os.path.normpath(os.path.join(cm.HERE, ".."))
KUBECTL = os.environ.get("QUARRY_KUBECTL", "kubectl")


class Rendered(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.validator = cm.SchemaValidator()
        cls.objs = {o: cm.render(os.path.join(K8S, "overlays", o), KUBECTL)
                    for o in ("cpu", "cuda", "rocm")}

    def obj(self, overlay, kind, name=None):
        for o in self.objs[overlay]:
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name):
                return copy.deepcopy(o)
        self.fail(f"{overlay}: no {kind} {name or ''}")

    def pod(self, obj):
        return obj["spec"]["template"]["spec"]

    def assertOneError(self, errors, *fragments):
        self.assertTrue(errors, "expected an error")
        joined = "\n".join(errors)
        for f in fragments:
            self.assertIn(f, joined)

    # ----- the real manifests pass -----
    def test_every_overlay_passes(self):
        for overlay, objs in self.objs.items():
            errs = [e for o in objs for e in self.validator.errors(o)] + cm.policy_errors(objs)
            self.assertEqual(errs, [], overlay)

    # ----- schema -----
    def test_typo_in_a_field_name_is_an_error_naming_its_path(self):
        ss = self.obj("cpu", "StatefulSet")
        c = self.pod(ss)["containers"][0]
        c["readinesProbe"] = c.pop("readinessProbe")
        self.assertOneError(self.validator.errors(ss),
                            "spec.template.spec.containers[0]", "'readinesProbe' was unexpected")

    def test_wrong_type_and_missing_required_key(self):
        d = self.obj("cpu", "Deployment")
        d["spec"]["replicas"] = "two"
        self.assertOneError(self.validator.errors(d), "spec.replicas", "is not of type 'integer'")
        d = self.obj("cpu", "Deployment")
        del self.pod(d)["containers"][0]["name"]
        self.assertOneError(self.validator.errors(d), "'name' is a required property")

    def test_crd_objects_are_checked_too(self):
        so = self.obj("cuda", "ScaledObject")
        so["spec"]["minReplicas"] = 0  # KEDA calls it minReplicaCount
        self.assertOneError(self.validator.errors(so), "'minReplicas' was unexpected")
        sm = self.obj("cpu", "ServiceMonitor")
        sm["spec"]["endpoints"][0]["intervall"] = "15s"
        self.assertOneError(self.validator.errors(sm), "'intervall' was unexpected")
        sm = self.obj("cpu", "ServiceMonitor")
        sm["metadata"]["lables"] = {}
        self.assertOneError(self.validator.errors(sm), "metadata", "'lables' was unexpected")

    def test_unknown_kind_has_no_schema(self):
        self.assertOneError(self.validator.errors(
            {"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}}),
            "no schema for apps/v1/Deploymnet")

    def test_int_or_string_and_quantities_accept_both_forms(self):
        d = self.obj("cpu", "Deployment")
        d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = "25%"
        self.pod(d)["containers"][0]["resources"]["requests"]["cpu"] = 4
        self.assertEqual(self.validator.errors(d), [])
        self.pod(d)["containers"][0]["resources"]["requests"]["cpu"] = [4]
        self.assertOneError(self.validator.errors(d), "resources.requests.cpu")

    # ----- policy -----
    def policy(self, overlay, kind, mutate):
        objs = copy.deepcopy(self.objs[overlay])
        for o in objs:
            if o["kind"] == kind:
                mutate(o)
                break
        return cm.policy_errors(objs)

    def test_latest_and_untagged_images_are_refused(self):
        set_image = lambda image: lambda o: self.pod(o)["containers"][0].__setitem__("image", image)
        self.assertOneError(self.policy("cpu", "StatefulSet", set_image("quarry:latest")),
                            "uses the 'latest' tag")
        self.assertOneError(self.policy("cpu", "StatefulSet",
                                        set_image("registry.example.com:5000/quarry")),
                            "has no tag")
        self.assertEqual(self.policy("cpu", "StatefulSet",
                                     set_image("registry.example.com/q@sha256:" + "0" * 64)), [])

    def test_root_and_writable_root_fs_are_refused(self):
        def root(o):
            self.pod(o)["securityContext"]["runAsUser"] = 0
            del self.pod(o)["securityContext"]["runAsNonRoot"]
        self.assertOneError(self.policy("cpu", "Deployment", root),
                            "runAsNonRoot must be true", "runAsUser must be set and non-zero")
        def writable(o):
            self.pod(o)["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
        self.assertOneError(self.policy("cpu", "Deployment", writable), "readOnlyRootFilesystem")

    def test_missing_resources_and_probes_are_refused(self):
        def no_requests(o):
            del self.pod(o)["containers"][0]["resources"]["requests"]
        self.assertOneError(self.policy("cpu", "StatefulSet", no_requests),
                            "resources.requests.cpu is not set")
        def no_probe(o):
            del self.pod(o)["containers"][0]["livenessProbe"]
        self.assertOneError(self.policy("cpu", "StatefulSet", no_probe),
                            "exposes ports but has no livenessProbe")

    def test_drain_timeout_must_fit_the_grace_period(self):
        def short_grace(o):
            self.pod(o)["terminationGracePeriodSeconds"] = 600
        self.assertOneError(self.policy("cpu", "Deployment", short_grace),
                            "--drain-timeout-ms=900000 leaves less than 30 s")
        def no_drain(o):
            c = self.pod(o)["containers"][0]
            c["args"] = [a for a in c["args"] if not a.startswith("--drain-timeout-ms")]
        self.assertOneError(self.policy("cpu", "Deployment", no_drain),
                            "quarry-worker without --drain-timeout-ms")

    def test_gpu_workers_need_limits_node_selection_and_tolerations(self):
        def untolerated(o):
            del self.pod(o)["tolerations"]
        self.assertOneError(self.policy("cuda", "Deployment", untolerated),
                            "does not tolerate the GPU nodes' taint")
        def request_only(o):
            del self.pod(o)["containers"][0]["resources"]["limits"]["amd.com/gpu"]
        self.assertOneError(self.policy("rocm", "Deployment", request_only),
                            "amd.com/gpu must be a limit")

    def test_workloads_need_a_disruption_budget_and_a_network_policy(self):
        objs = [o for o in copy.deepcopy(self.objs["cpu"])
                if o["kind"] not in ("PodDisruptionBudget", "NetworkPolicy")]
        self.assertOneError(cm.policy_errors(objs),
                            "StatefulSet/quarry-server: no PodDisruptionBudget",
                            "Deployment/quarry-worker: no NetworkPolicy")


class SourceTypo(unittest.TestCase):
    """A typo in the kustomize sources (not in a rendered copy) fails the whole check."""

    def test_typo_in_base_manifest_fails_the_overlay_check(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(K8S, os.path.join(tmp, "k8s"),
                            ignore=shutil.ignore_patterns("check"))
            path = os.path.join(tmp, "k8s", "base", "worker-deployment.yaml")
            with open(path) as f:
                text = f.read()
            self.assertIn("terminationGracePeriodSeconds:", text)
            with open(path, "w") as f:
                f.write(text.replace("terminationGracePeriodSeconds:",
                                     "terminationGracePeriodSecond:"))
            _, errs = cm.check(os.path.join(tmp, "k8s", "overlays", "cpu"), KUBECTL)
            self.assertTrue(any("'terminationGracePeriodSecond' was unexpected" in e
                                for e in errs), errs)

    def test_broken_kustomization_fails_to_render(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(K8S, os.path.join(tmp, "k8s"),
                            ignore=shutil.ignore_patterns("check"))
            os.remove(os.path.join(tmp, "k8s", "base", "servicemonitor.yaml"))
            with self.assertRaises(SystemExit) as ctx:
                cm.render(os.path.join(tmp, "k8s", "overlays", "cpu"), KUBECTL)
            self.assertIn("kubectl kustomize", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
