"""The container image and the Kubernetes manifests, checked without Docker or a cluster.

The Dockerfile is read instruction by instruction: dependencies in a layer of their own before
the source, a numeric non-root user, a data volume, a health check. Each manifest under
`deploy/kubernetes/` is validated offline against the Kubernetes JSON schemas that
`kubernetes-validate` ships (strict: an unknown field is an error), and what the manifests and
the image must agree on (user, port, data directory, probes, labels) is checked across files.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cds_service.config import load_config
from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest release still widely supported when this was written
ENV_PREFIX = "LEGCRAMP_CDS_"  # the service's configuration variables (config_env.py)


# --- the Dockerfile -------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined and comments dropped (as Docker does:
    a comment line inside a continued instruction is removed)."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            keyword, _, arguments = whole.partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def positions(keyword: str, pattern: str = "") -> list[int]:
    return [i for i, ins in enumerate(INSTRUCTIONS)
            if ins.keyword == keyword and re.search(pattern, ins.arguments)]


def copy_sources(instruction: Instruction) -> list[str]:
    words = [w for w in shlex.split(instruction.arguments) if not w.startswith("--")]
    return words[:-1]


def dependency_install() -> int:
    """The RUN that installs the dependencies: the first one that runs pip install."""
    found = positions("RUN", r"pip install")
    assert found, "no RUN installs anything with pip"
    return found[0]


def test_dependencies_are_installed_before_the_source_is_copied():
    deps = dependency_install()
    copies = positions("COPY")
    pyproject_copies = [i for i in copies if "pyproject.toml" in copy_sources(INSTRUCTIONS[i])]
    assert pyproject_copies and pyproject_copies[0] < deps, "pyproject.toml is not copied first"
    before = [s for i in copies if i < deps for s in copy_sources(INSTRUCTIONS[i])]
    assert before == ["pyproject.toml"], f"copied before the dependencies are installed: {before}"
    source_copies = [i for i in copies
                     if {"cds_service", "hooks"} & {s.rstrip("/") for s in
                                                   copy_sources(INSTRUCTIONS[i])}]
    assert len(source_copies) == 2 and min(source_copies) > deps
    assert not positions("ADD"), "ADD fetches and unpacks; COPY only copies"


def test_nothing_copies_the_whole_context():
    for i in positions("COPY"):
        sources = copy_sources(INSTRUCTIONS[i])
        assert not {".", "./", "*"} & set(sources), INSTRUCTIONS[i]


def test_the_dependency_layer_does_not_install_the_package():
    command = INSTRUCTIONS[dependency_install()].arguments
    assert not re.search(r"pip install[^&;]*(\s-e)?\s\.(\s|$)", command), command
    assert "-r " in command


def test_the_package_is_installed_without_dependencies_after_the_source():
    installs = positions("RUN", r"pip install [^&;]*--no-deps")
    assert installs, "the package itself must be installed with --no-deps"
    assert installs[0] > max(positions("COPY"))


def test_the_requirements_the_image_installs_are_the_projects_dependencies(tmp_path):
    """The dependency layer's own command, run on this pyproject.toml, lists exactly its
    dependencies and build backend: a dependency added to pyproject cannot be left out."""
    command = INSTRUCTIONS[dependency_install()].arguments
    extract = command.split(">")[0].strip()
    assert extract.startswith("python -c ")
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    interpreter = shlex.quote(sys.executable)
    listed = subprocess.run(["sh", "-c", extract.replace("python ", f"{interpreter} ", 1)],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = project["project"]["dependencies"] + project["build-system"]["requires"]
    assert listed.splitlines() == wanted


def image_user() -> tuple[int, int]:
    users = positions("USER")
    assert users, "the image runs as root: no USER"
    assert users[-1] > max(positions("RUN")), "a RUN after USER would need the user's rights"
    match = re.fullmatch(r"(\d+):(\d+)", INSTRUCTIONS[users[-1]].arguments)
    assert match, f"USER must be numeric uid:gid, not {INSTRUCTIONS[users[-1]].arguments!r}"
    return int(match[1]), int(match[2])


def test_the_image_runs_as_a_numeric_non_root_user_it_creates():
    uid, gid = image_user()
    assert uid >= 1000 and gid >= 1000
    created = " ".join(INSTRUCTIONS[i].arguments for i in positions("RUN", "useradd"))
    assert f"--uid {uid}" in created and f"--gid {gid}" in created
    assert re.search(rf"groupadd [^&]*--gid {gid}", created)


def data_volume() -> str:
    volumes = positions("VOLUME")
    assert len(volumes) == 1
    (path,) = yaml.safe_load(INSTRUCTIONS[volumes[0]].arguments)  # JSON array form
    return str(path)


def test_the_data_volume_belongs_to_the_user_and_is_the_working_directory():
    uid, gid = image_user()
    path = data_volume()
    made = " ".join(INSTRUCTIONS[i].arguments for i in positions("RUN", re.escape(path)))
    assert f"-o {uid}" in made and f"-g {gid}" in made and "-m 0700" in made
    assert INSTRUCTIONS[positions("WORKDIR")[-1]].arguments == path
    assert image_env()["LEGCRAMP_CDS_STORE__DATA_DIR"] == path


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for i in positions("ENV"):
        for word in shlex.split(INSTRUCTIONS[i].arguments):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def test_the_image_checks_its_own_health():
    checks = positions("HEALTHCHECK")
    assert len(checks) == 1 and "/health" in INSTRUCTIONS[checks[0]].arguments


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents wins."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, glob) or
               (glob.startswith("**/") and fnmatch.fnmatchcase(p.split("/")[-1], glob[3:]))
               for p in prefixes):
            ignored = not negated
    return ignored


def test_the_build_context_holds_what_is_copied_and_nothing_else():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    copied = [s.rstrip("/") for i in positions("COPY") for s in copy_sources(INSTRUCTIONS[i])]
    for path in [*copied, "cds_service/cli.py", "hooks/valuesets/quinine.json"]:
        assert not dockerignored(path, patterns), f"{path} is copied but ignored"
    for path in [".venv", ".git", "var/legcramp-cds.sqlite3", "tests", "fixtures", "deploy",
                 "replicas.toml", "cds_service/__pycache__/cli.cpython-311.pyc"]:
        assert dockerignored(path, patterns), f"{path} would be sent to the build"


# --- the Kubernetes manifests ---------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def all_documents() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in manifest_files():
        for document in load_documents(path):
            assert document["kind"] not in found, f"two {document['kind']} manifests"
            found[document["kind"]] = document
    return found


def validate(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_each_manifest_is_valid_kubernetes(path):
    documents = load_documents(path)
    assert documents
    for document in documents:
        validate(document)  # raises on any violation, and on a kind it has no schema for


def test_the_manifests_are_the_expected_kinds_and_kustomize_applies_them_all():
    documents = all_documents()
    assert {kind: d["apiVersion"] for kind, d in documents.items()} == {
        "ConfigMap": "v1", "Deployment": "apps/v1", "Service": "v1",
        "HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1",
        "NetworkPolicy": "networking.k8s.io/v1"}
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text("utf-8"))
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = document
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value


DELETE = object()
CONTAINER = "spec.template.spec.containers.0"
BROKEN = [  # (kind, path, value): each makes the manifest invalid
    ("Deployment", f"{CONTAINER}.readinesProbe", {"httpGet": {"path": "/ready", "port": 8080}}),
    ("Deployment", f"{CONTAINER}.securityContext.runAsUser", "10001"),
    ("Deployment", "spec.selector", DELETE),
    ("Service", "spec.ports.0.port", "http"),
    ("HorizontalPodAutoscaler", "spec.maxReplicas", DELETE),
    ("PodDisruptionBudget", "spec.maxUnavailable", [1]),
    ("NetworkPolicy", "spec.policyTypes", "Ingress"),
    ("NetworkPolicy", "apiVersion", "networking.k8s.io/v1beta1"),
]


@pytest.mark.parametrize(("kind", "path", "value"), BROKEN, ids=lambda v: str(v)[:40])
def test_the_validation_refuses_a_broken_manifest(kind, path, value):
    document = copy.deepcopy(all_documents()[kind])
    _set(document, path, value)
    with pytest.raises((kubernetes_validate.ValidationError,
                        kubernetes_validate.SchemaNotFoundError)):
        validate(document)


def pod_spec() -> dict[str, Any]:
    return all_documents()["Deployment"]["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    return only


def test_the_pod_runs_as_the_images_user_without_privileges():
    uid, gid = image_user()
    pod = pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (uid, gid, gid)
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    own = container()["securityContext"]
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"] == {"drop": ["ALL"]}
    assert own["seccompProfile"] == {"type": "RuntimeDefault"}
    assert (own["runAsUser"], own["runAsGroup"]) == (uid, gid)
    assert pod_spec()["automountServiceAccountToken"] is False


def mounts() -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container()["volumeMounts"]}


def volume(name: str) -> dict[str, Any]:
    (found,) = [v for v in pod_spec()["volumes"] if v["name"] == name]
    return found


def pod_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in container()["env"]}


def test_the_writable_paths_are_volumes_on_a_read_only_root():
    by_path = mounts()
    data = by_path[data_volume()]
    assert not data.get("readOnly") and ("emptyDir" in volume(data["name"])
                                         or "persistentVolumeClaim" in volume(data["name"]))
    assert "emptyDir" in volume(by_path["/tmp"]["name"])
    assert pod_env()["LEGCRAMP_CDS_STORE__DATA_DIR"] == data_volume()
    for path, mount in by_path.items():
        writable = path in (data_volume(), "/tmp")
        assert bool(mount.get("readOnly")) is not writable, path


def test_the_secrets_come_from_files_of_a_secret_volume():
    env = pod_env()
    secret_files = {name: Path(value) for name, value in env.items() if name.endswith("_FILE")}
    assert set(secret_files) == {"LEGCRAMP_CDS_STORE__URL_FILE",
                                 "LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE"}
    for name, path in secret_files.items():
        assert name.removesuffix("_FILE") not in env, f"{name}: the secret is in the pod spec"
        mount = mounts()[str(path.parent)]
        assert mount["readOnly"] is True
        secret = volume(mount["name"])["secret"]
        assert path.name in {item["path"] for item in secret["items"]}, name


def configuration_file() -> tuple[Path, str]:
    """The path the container is told to read its configuration from, and that file's text
    as the ConfigMap mounted there holds it."""
    args = container()["args"]
    path = Path(args[args.index("--config") + 1])
    mount = mounts()[str(path.parent)]
    assert mount["readOnly"] is True
    config_map = volume(mount["name"])["configMap"]["name"]
    document = all_documents()["ConfigMap"]
    assert document["metadata"]["name"] == config_map
    return path, document["data"][path.name]


def test_the_pod_starts_with_a_configuration_the_service_accepts(tmp_path):
    """The service's own loader, given the ConfigMap's file, the image's and the pod's
    LEGCRAMP_CDS_* variables, and the Secret's files where the pod has them: a misspelt
    variable, a non-secret read from a file or a bad key would stop every pod at start-up."""
    path, text = configuration_file()
    config_file = tmp_path / path.name
    config_file.write_text(text, encoding="utf-8")
    secrets = {"LEGCRAMP_CDS_STORE__URL_FILE": "postgresql+psycopg://cds:pw@db:5432/cds\n",
               "LEGCRAMP_CDS_STORE__PATIENT_HASH_KEY_FILE": "a-long-random-key\n"}
    environ = {name: value for name, value in {**image_env(), **pod_env()}.items()
               if name.startswith(ENV_PREFIX)}
    for name, contents in secrets.items():
        secret_file = tmp_path / Path(environ[name]).name
        secret_file.write_text(contents, encoding="utf-8")
        environ[name] = str(secret_file)
    config = load_config(config_file, environ=environ)
    assert config.store.url == "postgresql+psycopg://cds:pw@db:5432/cds"
    assert config.store.patient_hash_key == "a-long-random-key"
    assert config.store.data_dir == data_volume()
    assert config.auth.required is True and config.cors.allowed_origins == ()
    assert config.server.metrics_port == metrics_port()
    assert "SECRET" not in text.upper() and "PASSWORD" not in text.upper()


def test_the_image_alone_keeps_its_sqlite_store_on_the_data_volume():
    environ = {"HOME": "/nonexistent", **{n: v for n, v in image_env().items()
                                          if n.startswith(ENV_PREFIX)}}
    config = load_config(None, environ=environ)
    assert config.store.url.startswith(f"sqlite:///{data_volume()}/")


def ports() -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container()["ports"]}


def metrics_port() -> int:
    return ports()["metrics"]


def test_the_probes_ask_health_and_readiness_of_the_serving_port():
    own = container()
    expose = INSTRUCTIONS[positions("EXPOSE")[0]].arguments
    assert ports()["http"] == int(expose) == 8080
    for probe, path in [("startupProbe", "/health"), ("livenessProbe", "/health"),
                        ("readinessProbe", "/ready")]:
        assert own[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    pre_stop = own["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and 0 < int(pre_stop[1]) < pod_spec()[
        "terminationGracePeriodSeconds"]


def test_the_container_has_resource_requests_and_limits():
    resources = container()["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert {"cpu", "memory"} <= set(resources["limits"])


def test_the_other_objects_select_the_deployments_pods():
    documents = all_documents()
    labels = documents["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert documents["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert documents["Service"]["spec"]["selector"].items() <= labels.items()
    assert documents["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() \
        <= labels.items()
    assert documents["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"].items() \
        <= labels.items()
    (service_port,) = documents["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == "http", "the metrics port stays off the Service"
    annotations = documents["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port())
    target = documents["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment",
                                                documents["Deployment"]["metadata"]["name"])


def test_the_network_policy_lets_in_only_named_callers_and_out_only_dns_fhir_and_database():
    policy = all_documents()["NetworkPolicy"]["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    for rule in policy["ingress"]:
        assert rule["from"] and all(peer.get("namespaceSelector") for peer in rule["from"])
    ehr, monitoring = policy["ingress"]
    assert [p["port"] for p in ehr["ports"]] == [ports()["http"]]
    assert [p["port"] for p in monitoring["ports"]] == [metrics_port()]
    assert monitoring["from"][0]["podSelector"], "only Prometheus, not its whole namespace"
    egress_ports = {(p["protocol"], p["port"]) for r in policy["egress"] for p in r["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 5432)}
    for rule in policy["egress"]:
        assert rule["to"], "an egress rule without `to` allows every destination"
        for peer in rule["to"]:
            assert peer.get("ipBlock", {}).get("cidr") != "0.0.0.0/0"


def test_the_readme_points_at_the_manifests_instead_of_copying_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "deploy/kubernetes/" in readme
    assert "kind: Deployment" not in readme and "kind: HorizontalPodAutoscaler" not in readme
