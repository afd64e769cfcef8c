"""The deployment files: kustomize renders deploy/k8s, kubeconform validates every object strictly against the
schemas kept in deploy/schemas (a wrong field fails), and the compose file and Dockerfiles hang together."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = DEPLOY / "schemas"
SCHEMA_LOCATION = str(SCHEMAS) + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
DUMMY_SECRETS = (
    "MYSQL_PASSWORD=test-only\nMYSQL_ROOT_PASSWORD=test-only\nAPI_TOKEN=test-only\n"
    "ELASTIC_PASSWORD=test-only\n"
)
ES_URL = "elasticsearch://elastic:$(ELASTIC_PASSWORD)@elasticsearch:9200/freshrank-movies"


@pytest.fixture(scope="module")
def tools() -> Path:
    """kustomize and kubeconform, built once from the Go module proxy by deploy/tools.sh."""
    done = subprocess.run(["bash", str(DEPLOY / "tools.sh")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@pytest.fixture(scope="module")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/k8s with a throw-away secrets.env (the real one is never committed)."""
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(DEPLOY / "k8s", tree, ignore=shutil.ignore_patterns("secrets.env"))
    (tree / "overlays" / "production" / "secrets.env").write_text(DUMMY_SECRETS, encoding="utf-8")
    return tree


@pytest.fixture(scope="module")
def overlay(tools: Path, k8s_tree: Path) -> str:
    """The production overlay, rendered once."""
    return render(tools, k8s_tree / "overlays" / "production")


def render(tools: Path, directory: Path) -> str:
    done = subprocess.run(
        [str(tools / "kustomize"), "build", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def validate(tools: Path, manifests: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(manifests, encoding="utf-8")
    return subprocess.run(
        [
            str(tools / "kubeconform"),
            "-strict",
            "-summary",
            "-output",
            "text",
            "-schema-location",
            SCHEMA_LOCATION,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def objects(manifests: str) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def kinds(manifests: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in objects(manifests):
        found.setdefault(str(doc["kind"]), set()).add(str(doc["metadata"]["name"]))  # type: ignore[index]
    return found


def test_overlay_renders_every_part_and_validates(tools: Path, overlay: str, tmp_path: Path) -> None:
    manifests = overlay
    found = kinds(manifests)
    assert found["InferenceService"] == {"zero-shot-classifier"}
    assert found["FlinkDeployment"] == {"freshrank-trends"}
    assert {"opensearch", "mysql", "kafka"} <= found["StatefulSet"]
    assert {"redis", "search-api"} <= found["Deployment"]
    assert found["HorizontalPodAutoscaler"] == {"search-api"}
    assert found["CronJob"] == {"freshrank-refresh", "freshrank-monitor"}
    assert "freshrank-config" in found["ConfigMap"] and found["Secret"] == {"freshrank-secrets"}
    done = validate(tools, manifests, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in done.stdout
    for doc in objects(manifests):
        assert doc["metadata"].get("namespace", "freshrank") == "freshrank"  # type: ignore[union-attr]
    assert "registry.example.com/freshrank/trend-job:0.1.0" in manifests  # custom-resource image rewritten


def elasticsearch_version() -> str:
    """The version scripts/elasticsearch.sh runs in the tests: the deployments must use the same."""
    script = (ROOT / "scripts" / "elasticsearch.sh").read_text(encoding="utf-8")
    found = re.search(r"FRESHRANK_ELASTICSEARCH_VERSION:-([0-9.]+)", script)
    assert found
    return found.group(1)


def first_container(doc: Any) -> Any:
    """The first container of a Deployment's or a CronJob's pod template."""
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return spec["template"]["spec"]["containers"][0]


def env_of(container: Any) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env", [])}


def test_elasticsearch_overlay_swaps_the_engine_and_validates(
    tools: Path, k8s_tree: Path, tmp_path: Path
) -> None:
    manifests = render(tools, k8s_tree / "overlays" / "production-elasticsearch")
    found = kinds(manifests)
    assert "elasticsearch" in found["StatefulSet"] and "opensearch" not in found["StatefulSet"]
    assert "elasticsearch" in found["Service"] and "opensearch" not in found["Service"]
    docs: list[Any] = objects(manifests)
    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}
    engine = first_container(by_name["StatefulSet", "elasticsearch"])
    assert engine["image"].endswith(f"elasticsearch:{elasticsearch_version()}")
    assert env_of(engine)["ELASTIC_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "ELASTIC_PASSWORD"
    for key in [
        ("Deployment", "search-api"),
        ("CronJob", "freshrank-refresh"),
        ("CronJob", "freshrank-monitor"),
    ]:
        env = env_of(first_container(by_name[key]))
        assert env["FRESHRANK_SEARCH_URL"]["value"] == ES_URL, key
        names = list(env)  # $(VAR) expands only from variables defined earlier in the list
        assert names.index("ELASTIC_PASSWORD") < names.index("FRESHRANK_SEARCH_URL"), key
        assert env["ELASTIC_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "freshrank-secrets"
    done = validate(tools, manifests, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in done.stdout


def test_base_renders_and_validates(tools: Path, tmp_path: Path) -> None:
    manifests = render(tools, DEPLOY / "k8s" / "base")
    assert "Secret" not in kinds(manifests)  # no secret object, let alone a value, in the base
    done = validate(tools, manifests, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("Deployment", ("spec",), "replicaz"),
        ("Deployment", ("spec", "template", "spec", "containers", 0), "imagePullPolice"),
        ("InferenceService", ("spec", "predictor"), "containerz"),
        ("FlinkDeployment", ("spec", "job"), "entryKlass"),
        ("CronJob", ("spec",), "scheduel"),
        ("HorizontalPodAutoscaler", ("spec",), "maxReplica"),
    ],
)
def test_a_wrong_field_is_caught(
    tools: Path, overlay: str, tmp_path: Path, kind: str, path: tuple[object, ...], field: str
) -> None:
    docs = objects(overlay)
    target = next(doc for doc in docs if doc["kind"] == kind)
    node: object = target
    for key in path:
        node = node[key]  # type: ignore[index]
    node[field] = 1  # type: ignore[index]
    done = validate(tools, yaml.safe_dump_all(docs), tmp_path)
    assert done.returncode != 0
    assert field in done.stdout and kind in done.stdout


def test_a_wrong_type_is_caught(tools: Path, overlay: str, tmp_path: Path) -> None:
    docs = objects(overlay)
    hpa = next(doc for doc in docs if doc["kind"] == "HorizontalPodAutoscaler")
    hpa["spec"]["minReplicas"] = "two"  # type: ignore[index]
    done = validate(tools, yaml.safe_dump_all(docs), tmp_path)
    assert done.returncode != 0 and "minReplicas" in done.stdout


def test_no_secret_values_are_committed() -> None:
    overlay = DEPLOY / "k8s" / "overlays" / "production"
    assert "secrets.env" in (overlay / ".gitignore").read_text(encoding="utf-8").split()
    example = (overlay / "secrets.env.example").read_text(encoding="utf-8")
    for line in example.splitlines():
        if line and not line.startswith("#"):
            assert line.endswith("="), f"secrets.env.example must not carry a value: {line}"
    tracked = subprocess.run(["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "secrets.env\n" not in tracked and not tracked.endswith("secrets.env")


def test_compose_builds_every_image_from_files_in_the_repo() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {
        "opensearch",
        "redis",
        "mysql",
        "kafka",
        "classifier",
        "search-api",
        "trend-job",
        "producer",
        "refresh",
    } <= set(services)
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
            assert (context / "pyproject.toml").is_file(), name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    password = services["mysql"]["environment"]["MYSQL_PASSWORD"]
    assert password.startswith("${") and ":?" in password  # from the environment, never a literal


def test_compose_offers_elasticsearch_as_an_opt_in_profile() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    engine = services["elasticsearch"]
    assert engine["profiles"] == ["elasticsearch"]  # never started unless asked for
    assert engine["image"].endswith(f"elasticsearch:{elasticsearch_version()}")
    assert engine["environment"]["ELASTIC_PASSWORD"].startswith("${")  # from the environment
    assert engine["environment"]["xpack.security.enabled"] == "true"
    assert "elasticsearch-data" in compose["volumes"]
    url = compose["x-freshrank-env"]["FRESHRANK_SEARCH_URL"]
    assert url == "${FRESHRANK_SEARCH_URL:-opensearch://opensearch:9200/freshrank-movies}"
    for name in ("search-api", "refresh"):
        dependency = services[name]["depends_on"]["elasticsearch"]
        assert dependency == {"condition": "service_healthy", "required": False}, name


@pytest.mark.parametrize("dockerfile", sorted((DEPLOY / "docker").glob("Dockerfile.*")), ids=lambda p: p.name)
def test_dockerfiles_copy_only_what_exists(dockerfile: Path) -> None:
    text = dockerfile.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("#") and "FROM " in text
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:  # --from: from an earlier build stage
            for source in line.split()[1:-1]:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"{dockerfile.name}: {source} is not in the repository"
