"""Cluster tests (marker `cluster`): run with `pytest --cluster tests/e2e` against a kind cluster.

`make test` only collects them (`make test-cluster-collect`), so they keep importing and stay in
step with the code even on machines without a cluster.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def api_client() -> object:
    from kubernetes import client, config

    config.load_kube_config()
    return client.ApiClient()


def test_api_server_answers(api_client: object) -> None:
    from kubernetes import client

    info = client.VersionApi(api_client).get_code()
    assert int(info.major) == 1
    assert int(info.minor.rstrip("+")) >= 29


def test_kserve_crds_are_installed(api_client: object) -> None:
    from kubernetes import client

    names = {
        crd.metadata.name
        for crd in client.ApiextensionsV1Api(api_client).list_custom_resource_definition().items
    }
    assert "inferenceservices.serving.kserve.io" in names
    assert "servingruntimes.serving.kserve.io" in names
