"""deploy/k8s rendered with kustomize (kubectl's built-in) for each overlay and checked offline: every core
object against the Kubernetes schemas kubernetes-validate bundles (strict), KEDA's ScaledObject and
TriggerAuthentication (CRDs, in no bundled schema) against the fields KEDA requires, and the wiring against
the code: one Deployment per agent of the registry, probes from `charla alive`, the drain, the streams. No
cluster runs here."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from agents.registry import AGENTS
from charla.cli.supervisor import STOP_TIMEOUT_S
from charla.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("small", "large")
K8S_VERSION = "1.32.0"  # the kubectl Debian ships here; the manifests use only long-stable APIs
Doc = dict[str, Any]

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None,
                                reason="needs kubectl (Debian kubernetes-client) for `kubectl kustomize`")

# What KEDA requires of the objects used here (keda.sh/v1alpha1; its CRDs are not in the bundled schemas).
_TRIGGER = {"type": "object", "required": ["type", "metadata"], "properties": {
    "type": {"const": "redis-streams"},
    "authenticationRef": {"type": "object", "required": ["name"]},
    "metadata": {"type": "object", "required": ["stream", "consumerGroup", "lagCount"],
                 "additionalProperties": {"type": "string"}}}}
SCALED_OBJECT = {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
    "apiVersion": {"const": "keda.sh/v1alpha1"},
    "metadata": {"type": "object", "required": ["name", "namespace"]},
    "spec": {"type": "object", "required": ["scaleTargetRef", "triggers"], "properties": {
        "scaleTargetRef": {"type": "object", "required": ["name"]},
        "minReplicaCount": {"type": "integer", "minimum": 1},
        "maxReplicaCount": {"type": "integer", "minimum": 1},
        "pollingInterval": {"type": "integer"}, "cooldownPeriod": {"type": "integer"},
        "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER}}, "additionalProperties": False}}}
TRIGGER_AUTH = {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
    "apiVersion": {"const": "keda.sh/v1alpha1"},
    "spec": {"type": "object", "required": ["secretTargetRef"], "properties": {"secretTargetRef": {
        "type": "array", "items": {"type": "object", "required": ["parameter", "name", "key"]}}}}}}


@cache
def rendered(overlay: str) -> tuple[Doc, ...]:
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(deployment: Doc) -> Doc:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid(overlay: str) -> None:
    kinds = set()
    for doc in rendered(overlay):
        kinds.add(doc["kind"])
        if doc["kind"] == "ScaledObject":
            jsonschema.validate(doc, SCALED_OBJECT)
        elif doc["kind"] == "TriggerAuthentication":
            jsonschema.validate(doc, TRIGGER_AUTH)
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"].get("namespace", "charla") == "charla"
    assert kinds == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Job", "ScaledObject",
                     "TriggerAuthentication"}


def test_the_schema_check_of_keda_objects_can_fail() -> None:
    scaled = next(iter(of_kind(rendered("small"), "ScaledObject").values()))
    broken = {**scaled, "spec": {**scaled["spec"], "triggers": [{"type": "redis-streams", "metadata": {}}]}}
    with pytest.raises(jsonschema.ValidationError, match="stream"):
        jsonschema.validate(broken, SCALED_OBJECT)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_deployment_per_process_with_probes_drain_and_budget(overlay: str) -> None:
    docs = rendered(overlay)
    deployments, budgets = of_kind(docs, "Deployment"), of_kind(docs, "PodDisruptionBudget")
    assert set(deployments) == {f"charla-{name}" for name in [*AGENTS, "orchestrator"]}
    for name in AGENTS:
        deployment = deployments[f"charla-{name}"]
        main = container(deployment)
        assert main["args"] == ["agent", name]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert main[probe]["exec"]["command"] == ["charla", "alive", name]
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace == STOP_TIMEOUT_S, "SIGTERM leaves the worker its 30 s drain, as compose and the supervisor"
    orchestrator = container(deployments["charla-orchestrator"])
    assert orchestrator["args"] == ["serve"]
    assert orchestrator["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert orchestrator["livenessProbe"]["exec"]["command"] == ["charla", "alive", "orchestrator"]
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), f"{name}: its PodDisruptionBudget selects its pods"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_each_consuming_agent_on_its_group_lag(overlay: str) -> None:
    docs = rendered(overlay)
    scaled, auths = of_kind(docs, "ScaledObject"), of_kind(docs, "TriggerAuthentication")
    config = next(iter(of_kind(docs, "ConfigMap").values()))["data"]
    consuming = {name: spec for name, spec in AGENTS.items() if spec.consumes}
    assert set(scaled) == {f"charla-{name}" for name in consuming}, "every agent that consumes a stream"
    for name, spec in consuming.items():
        obj = scaled[f"charla-{name}"]
        assert obj["spec"]["scaleTargetRef"]["name"] == f"charla-{name}"
        triggers = obj["spec"]["triggers"]
        assert {(t["metadata"]["stream"], t["metadata"]["consumerGroup"]) for t in triggers} == {
            (consumes.stream, name) for consumes in spec.consumes}
        for trigger in triggers:
            assert int(trigger["metadata"]["lagCount"]) > 0
            assert trigger["metadata"]["addressFromEnv"] in config
            auth = auths[trigger["authenticationRef"]["name"]]
            assert auth["spec"]["secretTargetRef"] == [
                {"parameter": "password", "name": "charla-secrets", "key": "REDIS_PASSWORD"}]
        assert obj["spec"]["minReplicaCount"] <= obj["spec"]["maxReplicaCount"]


def secret_names() -> set[str]:
    """Every setting that is a secret, by its environment name, and the URLs that carry passwords."""
    names = {"DATABASE_URL", "REDIS_URL", "REDIS_PASSWORD"}
    for field in Settings.model_fields.values():
        if "SecretStr" in str(field.annotation) and field.validation_alias is not None:
            names.update(str(choice) for choice in getattr(field.validation_alias, "choices", ()))
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_only_from_the_secret_object(overlay: str) -> None:
    docs = rendered(overlay)
    assert "Secret" not in {doc["kind"] for doc in docs}, "the operator creates charla-secrets; no values here"
    secrets = secret_names()
    assert {"WHATSAPP_APP_SECRET", "CHARLA_ADMIN_TOKEN"} <= secrets
    for config in of_kind(docs, "ConfigMap").values():
        assert not secrets & set(config["data"])
    workloads = [*of_kind(docs, "Deployment").values(), *of_kind(docs, "Job").values()]
    for workload in workloads:
        main = container(workload)
        assert {"secretRef": {"name": "charla-secrets"}} in main["envFrom"]
        assert not [env for env in main.get("env", []) if "value" in env], "no inline values"
