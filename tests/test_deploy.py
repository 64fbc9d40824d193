"""Every Kubernetes manifest in deploy/ is valid against the Kubernetes schemas (offline, with
the schemas `kubernetes-validate` ships), and the pieces fit together: selectors find the
pods, the Socket Mode variant needs nothing to reach it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in documents(path) if doc["kind"] == kind]


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def test_deploy_has_the_expected_manifests() -> None:
    assert {path.name for path in MANIFESTS} >= {
        "kubernetes.yaml",
        "kubernetes-socket-mode.yaml",
        "pod-disruption-budget.yaml",
        "network-policy.yaml",
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_every_resource_is_valid_against_the_kubernetes_schema(path: Path) -> None:
    for doc in documents(path):
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {where}: {exc}")


def test_a_wrong_field_is_caught_by_the_validation() -> None:
    deployment = documents(DEPLOY / "kubernetes.yaml")[0]
    deployment["spec"]["replica"] = 2  # a typo of `replicas`
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_budget_and_policies_select_the_pods_of_each_variant() -> None:
    deployments = resources("Deployment")
    assert len(deployments) == 2
    selectors = [doc["spec"]["selector"] for _p, doc in resources("PodDisruptionBudget")]
    selectors += [doc["spec"]["podSelector"] for _p, doc in resources("NetworkPolicy")][:1]
    for path, deployment in deployments:
        labels = pod_labels(deployment)
        assert selects(deployment["spec"]["selector"], labels), path.name
        for selector in selectors:
            assert selects(selector, labels), f"{path.name} is not selected by {selector}"


def test_the_http_variant_alone_is_reachable_from_the_ingress_controller() -> None:
    [http_only] = [
        doc
        for _p, doc in resources("NetworkPolicy")
        if doc["metadata"]["name"].endswith("http-events")
    ]
    http = documents(DEPLOY / "kubernetes.yaml")[0]
    assert selects(http_only["spec"]["podSelector"], pod_labels(http))


def test_each_variant_upgrades_the_database_before_it_starts() -> None:
    for path, deployment in resources("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        [init] = spec["initContainers"]
        assert init["args"] == ["db", "upgrade"], path.name
        assert init["image"] == spec["containers"][0]["image"], path.name
        url = next(e for e in init["env"] if e["name"] == "ORCH_DATABASE_URL")
        served = next(e for e in spec["containers"][0]["env"] if e["name"] == "ORCH_DATABASE_URL")
        assert url == served, path.name


def test_the_socket_mode_variant_needs_no_service_and_no_ingress() -> None:
    docs = documents(DEPLOY / "kubernetes-socket-mode.yaml")
    assert [doc["kind"] for doc in docs] == ["Deployment"]
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "run" and "--http" not in container["args"]
    env = {item["name"] for item in container["env"]}
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "ORCH_DATABASE_URL"} <= env
    assert "SLACK_SIGNING_SECRET" not in env
    http_only = next(
        doc
        for _p, doc in resources("NetworkPolicy")
        if doc["metadata"]["name"].endswith("http-events")
    )
    assert not selects(http_only["spec"]["podSelector"], pod_labels(docs[0]))
