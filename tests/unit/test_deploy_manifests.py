"""The deploy files against the schemas of the programs that read them (no Ray, no cluster).

- ``deploy/kuberay/*.yaml``: ``apiVersion`` and ``kind`` against KubeRay's CRDs (copies in
  ``deploy/kuberay/crds/``); each ``spec`` against the CRD's ``openAPIV3Schema`` with
  jsonschema, plus the unknown-field check the API server does by pruning (it drops a field its
  structural schema does not declare, silently: a typo would vanish, not fail); and each pod
  template against Kubernetes' own ``v1 PodTemplate`` schema (kubernetes-validate, strict), for
  the oldest and the newest Kubernetes the manifests are meant for.
- ``deploy/cluster.yaml``: Ray's cluster launcher schema (``ray/autoscaler/ray-schema.json`` in
  the installed ray package, found without importing ray) and the checks ``ray up`` adds to it,
  with its commented GPU worker type both left out and put in.

Each validator returns ``"<path>: <message>"`` lines; the planted-error tables show that each
one fails on a typo'd or mistyped field and names where it is.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

KUBERAY = REPO / "deploy" / "kuberay"
CRDS = KUBERAY / "crds"
CLUSTER_YAML = REPO / "deploy" / "cluster.yaml"
# The manifests, the kind each one is, and the CRD that serves it.
MANIFESTS = {
    "raycluster.yaml": ("RayCluster", "ray.io_rayclusters.yaml"),
    "rayjob.yaml": ("RayJob", "ray.io_rayjobs.yaml"),
}
API_VERSION = "ray.io/v1"
# The oldest Kubernetes the manifests are meant for and the newest kubernetes-validate bundles:
# a pod field added after the first, or removed by the second, fails here.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
GPU_PREFIX = re.compile(r"^( *)#gpu ", re.MULTILINE)  # cluster.yaml's commented GPU type

Doc = dict[str, Any]


def load(name: str) -> Doc:
    data: Doc = yaml.safe_load((KUBERAY / name).read_text())
    return data


def dotted(parts: Iterable[str | int], prefix: str = "") -> str:
    """``spec.workerGroupSpecs[0].template`` from its parts."""
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top)"


def planted(doc: Doc, path: str, value: Any) -> Doc:
    """A copy of ``doc`` with ``value`` set at ``path`` (``spec.workerGroupSpecs[0].replcas``)."""
    planted_doc = copy.deepcopy(doc)
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    node: Any = planted_doc
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return planted_doc


# --- KubeRay: the CRDs --------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def crd(name: str) -> Doc:
    """A CRD, parsed once (they are large; callers do not modify it)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: Doc = yaml.load((CRDS / name).read_text(), Loader=loader)
    return data


def served_schema(definition: Doc, api_version: str) -> Doc:
    """The ``openAPIV3Schema`` the CRD serves for ``api_version`` (KeyError if none)."""
    group = definition["spec"]["group"]
    for version in definition["spec"]["versions"]:
        if f"{group}/{version['name']}" == api_version and version["served"]:
            schema: Doc = version["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{definition['metadata']['name']} serves no {api_version}")


def json_schema(node: Doc) -> Doc:
    """An OpenAPI v3 (structural CRD) schema as JSON Schema. ``x-kubernetes-*`` keys stay (JSON
    Schema ignores them); int-or-string and ``nullable`` become what they mean."""
    out = dict(node)
    if node.get("x-kubernetes-int-or-string") or node.get("format") == "int-or-string":
        out.pop("format", None)
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out:
        out["properties"] = {key: json_schema(sub) for key, sub in out["properties"].items()}
    for key in ("additionalProperties", "items", "not"):
        if isinstance(out.get(key), dict):
            out[key] = json_schema(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [json_schema(sub) for sub in out[key]]
    return out


# Kubernetes' integer formats, which JSON Schema does not know.
FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
FORMATS.checks("int64")(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63)


def unknown_fields(value: Any, schema: Doc, path: str) -> Iterator[str]:
    """Fields of ``value`` that ``schema`` does not declare, recursively. Free maps
    (``additionalProperties``) and ``x-kubernetes-preserve-unknown-fields`` take any key."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema.get("items", {}), f"{path}[{index}]")
        return
    if not isinstance(value, dict):
        return
    declared = schema.get("properties", {})
    free = schema.get("additionalProperties")
    for key, item in value.items():
        if key in declared:
            yield from unknown_fields(item, declared[key], f"{path}.{key}")
        elif isinstance(free, dict):
            yield from unknown_fields(item, free, f"{path}.{key}")
        elif free is not True:
            yield (f"{path}.{key}: not a field of the CRD's schema (known here: "
                   f"{', '.join(sorted(declared)) or 'none'}); the API server would drop it")


def crd_errors(doc: Doc, crd_name: str) -> list[str]:
    """What the API server would reject in (or silently drop from) the manifest's ``spec``."""
    try:
        schema = served_schema(crd(crd_name), doc.get("apiVersion", ""))
    except KeyError as error:
        return [f"apiVersion: {doc.get('apiVersion')!r}: {error.args[0]}; use {API_VERSION}"]
    kind = crd(crd_name)["spec"]["names"]["kind"]
    errors = [] if doc.get("kind") == kind else [f"kind: {doc.get('kind')!r}, expected {kind!r}"]
    spec_schema = schema["properties"]["spec"]
    validator = jsonschema.Draft7Validator(json_schema(spec_schema), format_checker=FORMATS)
    errors += [f"{dotted(e.absolute_path, 'spec')}: {e.message}"
               for e in validator.iter_errors(doc.get("spec", {}))]
    return errors + list(unknown_fields(doc.get("spec", {}), spec_schema, "spec"))


# --- KubeRay: the pod templates -----------------------------------------------------------


def cluster_templates(spec: Doc, path: str) -> Iterator[tuple[str, Doc]]:
    if "template" in spec.get("headGroupSpec", {}):
        yield f"{path}.headGroupSpec.template", spec["headGroupSpec"]["template"]
    for index, group in enumerate(spec.get("workerGroupSpecs", [])):
        if "template" in group:
            yield f"{path}.workerGroupSpecs[{index}].template", group["template"]


def pod_templates(doc: Doc) -> Iterator[tuple[str, Doc]]:
    """Every pod template of a RayCluster or RayJob, with its path."""
    spec = doc.get("spec", {})
    if doc.get("kind") == "RayCluster":
        yield from cluster_templates(spec, "spec")
    if "rayClusterSpec" in spec:
        yield from cluster_templates(spec["rayClusterSpec"], "spec.rayClusterSpec")
    if "submitterPodTemplate" in spec:
        yield "spec.submitterPodTemplate", spec["submitterPodTemplate"]


def pod_template_errors(doc: Doc, kubernetes: str) -> list[str]:
    """Each pod template as a ``v1 PodTemplate``, strictly (unknown fields are errors).
    kubernetes-validate stops at a template's first error."""
    errors = []
    for path, template in pod_templates(doc):
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"},
                   "template": template}
        try:
            kubernetes_validate.validate(wrapped, kubernetes, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = dotted(list(error.absolute_path)[1:], path)  # [0] is the wrapper's template
            errors.append(f"{where}: {error.message} (Kubernetes {error.version})")
    return errors


def ray_containers(doc: Doc) -> Iterator[tuple[str, Doc]]:
    """The Ray container (KubeRay's first) of each head and worker pod template."""
    for path, template in pod_templates(doc):
        if not path.endswith("submitterPodTemplate"):
            yield f"{path}.spec.containers[0]", template["spec"]["containers"][0]


# --- the cluster launcher -----------------------------------------------------------------


def ray_schema_path() -> Path:
    """ray/autoscaler/ray-schema.json of the installed ray, located without importing ray."""
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations, "ray is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "autoscaler" / "ray-schema.json"


def launcher_config(with_gpu: bool = False) -> Doc:
    text = CLUSTER_YAML.read_text()
    data: Doc = yaml.safe_load(GPU_PREFIX.sub(r"\1", text) if with_gpu else text)
    return data


def launcher_errors(config: Doc) -> list[str]:
    """Ray's launcher schema, and the cross-checks ``ray up`` makes after it
    (``ray.autoscaler._private.util.validate_config``), plus min <= max per node type."""
    schema = json.loads(ray_schema_path().read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{dotted(e.absolute_path)}: {e.message}" for e in validator.iter_errors(config)]
    types = config.get("available_node_types", {})
    if config.get("head_node_type") not in types:
        errors.append(f"head_node_type: {config.get('head_node_type')!r} is not one of "
                      f"available_node_types ({', '.join(types)})")
    wanted = sum(t.get("min_workers", 0) for t in types.values())
    if wanted > config.get("max_workers", 2):
        errors.append(f"max_workers: {config.get('max_workers')} is below the node types' "
                      f"min_workers, {wanted} together")
    for name, node_type in types.items():
        if node_type.get("min_workers", 0) > node_type.get("max_workers", wanted):
            errors.append(f"available_node_types.{name}: min_workers above max_workers")
    return errors


# --- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_a_kuberay_v1_resource(name: str) -> None:
    doc = load(name)
    kind, crd_name = MANIFESTS[name]
    assert (doc["apiVersion"], doc["kind"]) == (API_VERSION, kind)
    assert served_schema(crd(crd_name), API_VERSION)


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_spec_matches_the_crd(name: str) -> None:
    assert crd_errors(load(name), MANIFESTS[name][1]) == []


@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", MANIFESTS)
def test_pod_templates_match_kubernetes(name: str, kubernetes: str) -> None:
    assert pod_template_errors(load(name), kubernetes) == []


def test_every_pod_template_is_found() -> None:
    # Otherwise the two tests above would pass on manifests they never looked into.
    assert [path for path, _ in pod_templates(load("raycluster.yaml"))] == [
        "spec.headGroupSpec.template", "spec.workerGroupSpecs[0].template"]
    assert [path for path, _ in pod_templates(load("rayjob.yaml"))] == [
        "spec.submitterPodTemplate"]


def test_the_cluster_fits_a_rayjob_of_its_own() -> None:
    # given a RayJob that brings its own cluster (rayClusterSpec) instead of clusterSelector
    job = load("rayjob.yaml")
    del job["spec"]["clusterSelector"]
    job["spec"]["rayClusterSpec"] = load("raycluster.yaml")["spec"]
    # then the RayJob CRD and Kubernetes accept it, and all three pod templates are checked
    assert crd_errors(job, "ray.io_rayjobs.yaml") == []
    assert pod_template_errors(job, KUBERNETES_VERSIONS[-1]) == []
    assert len(list(pod_templates(job))) == 3


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_ray_pod_frees_objects_one_by_one(name: str) -> None:
    # deploy/README.md: frames a camera released would linger past its buffers bound otherwise.
    for path, container in ray_containers(load(name)):
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env.get("RAY_free_objects_batch_size") == "1", path


CRD_PLANTED = [
    # (manifest, path, planted value, what the message must name)
    ("raycluster.yaml", "spec.workerGroupSpecs[0].replcas", 2,
     "spec.workerGroupSpecs[0].replcas: not a field"),
    ("raycluster.yaml", "spec.workerGroupSpecs[0].replicas", "two",
     "spec.workerGroupSpecs[0].replicas: 'two' is not of type 'integer'"),
    ("raycluster.yaml", "spec.workerGroupSpecs[0].maxReplicas", 2**40,
     "spec.workerGroupSpecs[0].maxReplicas: 1099511627776 is not a 'int32'"),
    ("raycluster.yaml", "spec.headGroupSpec.rayStartParams.num-cpus", 0,
     "spec.headGroupSpec.rayStartParams.num-cpus: 0 is not of type 'string'"),
    ("raycluster.yaml", "spec.headGroupSpec.template.spec.containers[0].imagee", "x",
     "spec.headGroupSpec.template.spec.containers[0].imagee: not a field"),
    ("raycluster.yaml", "spec.workerGroupSpecs[0].template.spec.containers[0].resources"
     ".limits.cpu", [8], "limits.cpu: [8] is not valid under any of the given schemas"),
    ("rayjob.yaml", "spec.entrypont", "python -m fleet run x.yaml", "spec.entrypont: not a field"),
    ("raycluster.yaml", "spec.workerGroupSpecs[0].template.spec.containers[0].resources"
     ".limits.memory", "16 GiB", "limits.memory: '16 GiB' does not match"),
    ("raycluster.yaml", "spec.autoscalerOptions", {"upscalingMode": "Fast"},
     "spec.autoscalerOptions.upscalingMode: 'Fast' is not one of"),
    ("rayjob.yaml", "apiVersion", "ray.io/v1alpha2", "apiVersion: 'ray.io/v1alpha2'"),
    ("rayjob.yaml", "kind", "RayService", "kind: 'RayService', expected 'RayJob'"),
]


@pytest.mark.parametrize(("name", "path", "value", "expected"), CRD_PLANTED)
def test_the_crd_check_rejects_a_planted_error(name: str, path: str, value: Any,
                                               expected: str) -> None:
    errors = crd_errors(planted(load(name), path, value), MANIFESTS[name][1])
    assert any(expected in error for error in errors), errors


POD_PLANTED = [
    ("raycluster.yaml", "spec.workerGroupSpecs[0].template.spec.containers[0].imagee", "x",
     "spec.workerGroupSpecs[0].template.spec.containers[0]: Additional properties are not "
     "allowed ('imagee' was unexpected)"),
    ("raycluster.yaml", "spec.headGroupSpec.template.spec.volumes[0].configMap.optional", "yes",
     "spec.headGroupSpec.template.spec.volumes[0].configMap.optional: 'yes' is not of type"),
    ("raycluster.yaml", "spec.headGroupSpec.template.spec.containers[0].ports[0].containerPort",
     "6379", "containers[0].ports[0].containerPort: '6379' is not of type 'integer'"),
    ("rayjob.yaml", "spec.submitterPodTemplate.spec.restartPolicy", 0,
     "spec.submitterPodTemplate.spec.restartPolicy: 0 is not of type 'string'"),
    ("rayjob.yaml", "spec.submitterPodTemplate.spec.containers[0]", {"image": "camfleet"},
     "spec.submitterPodTemplate.spec.containers[0]: 'name' is a required property"),
]


@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("name", "path", "value", "expected"), POD_PLANTED)
def test_the_kubernetes_check_rejects_a_planted_error(name: str, path: str, value: Any,
                                                      expected: str, kubernetes: str) -> None:
    errors = pod_template_errors(planted(load(name), path, value), kubernetes)
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize("with_gpu", [False, True], ids=["cpu", "with-gpu-type"])
def test_cluster_yaml_matches_rays_launcher_schema(with_gpu: bool) -> None:
    config = launcher_config(with_gpu)
    assert ("ray.worker.gpu" in config["available_node_types"]) is with_gpu
    assert launcher_errors(config) == []


def test_cluster_yaml_sets_up_camfleet_and_its_models() -> None:
    config = launcher_config(with_gpu=True)
    gpu_setup = config["available_node_types"]["ray.worker.gpu"]["worker_setup_commands"]
    for commands in (config["setup_commands"], gpu_setup):
        assert any(re.search(r"pip install .*~/camfleet", c) for c in commands), commands
        assert any("scripts/fetch_models.py" in c for c in commands), commands
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = " ".join(config[key])
        assert "RAY_free_objects_batch_size=1" in start, key
        assert "CAMFLEET_MODELS=" in start, key


Mutation = Callable[[Doc], object]
LAUNCHER_PLANTED: list[tuple[str, Mutation, str]] = [
    ("top-level typo", lambda c: c.update(setup_command=[]),
     "(top): Additional properties are not allowed ('setup_command' was unexpected)"),
    ("node type typo", lambda c: c["available_node_types"]["ray.worker.cpu"].update(min_worker=1),
     "available_node_types.ray.worker.cpu: Additional properties are not allowed "
     "('min_worker' was unexpected)"),
    ("negative resource", lambda c: c["available_node_types"]["ray.head.default"].update(
        resources={"CPU": -1}), "available_node_types.ray.head.default.resources.CPU: -1 is less"),
    ("no provider type", lambda c: c["provider"].pop("type"),
     "provider: 'type' is a required property"),
    ("unknown head type", lambda c: c.update(head_node_type="ray.head.gpu"),
     "head_node_type: 'ray.head.gpu' is not one of available_node_types"),
    ("too few workers", lambda c: c.update(max_workers=0),
     "max_workers: 0 is below the node types' min_workers"),
]


@pytest.mark.parametrize(("mutate", "expected"), [case[1:] for case in LAUNCHER_PLANTED],
                         ids=[case[0] for case in LAUNCHER_PLANTED])
def test_the_launcher_check_rejects_a_planted_error(mutate: Mutation, expected: str) -> None:
    config = launcher_config()
    mutate(config)
    errors = launcher_errors(config)
    assert any(expected in error for error in errors), errors


# --- closed by default (docs/security.md) -------------------------------------------------------


def test_the_raycluster_turns_on_token_authentication() -> None:
    # Without it, anyone who reaches the head's job API runs code on the cluster.
    doc = load("raycluster.yaml")
    assert doc["spec"]["authOptions"] == {"mode": "token"}
    assert crd_errors(doc, "ray.io_rayclusters.yaml") == []


@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
def test_the_network_policy_is_valid_and_admits_only_the_cluster_and_its_clients(
        kubernetes: str) -> None:
    policy = load("networkpolicy.yaml")
    kubernetes_validate.validate(policy, kubernetes, strict=True)
    cluster = load("raycluster.yaml")["metadata"]["name"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"ray.io/cluster": cluster}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert {"podSelector": {"matchLabels": {"ray.io/cluster": cluster}}} in sources
    # every other source is limited to the metrics ports
    open_rules = [rule for rule in policy["spec"]["ingress"] if "ports" not in rule]
    for rule in open_rules:
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, peer
    # and the RayJob's submitter carries the client label the policy admits
    submitter = load("rayjob.yaml")["spec"]["submitterPodTemplate"]
    assert submitter["metadata"]["labels"] == {"camfleet.io/ray-client": "true"}


def test_the_network_policy_check_rejects_a_planted_error() -> None:
    policy = planted(load("networkpolicy.yaml"), "spec.policyType", ["Ingress"])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(policy, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_launched_cluster_asks_for_a_token_and_keeps_the_dashboard_on_loopback() -> None:
    config = launcher_config()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert "RAY_AUTH_MODE=token" in " ".join(config[key]), key
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
