"""The ANN index: exact top-k on hand-made vectors, each library against exact search,
exclusions, save/load with hashes and versions, and the bad inputs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from getit_ml.errors import UserError
from getit_ml.training.recommenders.ann import BACKENDS, MANIFEST, AnnIndex, default_params

_MODULES = {"faiss-hnsw": "faiss", "faiss-ivf": "faiss", "usearch-hnsw": "usearch"}
_MODULES["hnswlib"] = "hnswlib"


def _backend(name: str) -> object:
    module = _MODULES.get(name)
    missing = module is not None and importlib.util.find_spec(module) is None
    return pytest.param(
        name, marks=pytest.mark.skipif(missing, reason=f"{module} is not installed")
    )


ANN_BACKENDS = [_backend(name) for name in BACKENDS if name != "exact"]
ALL_BACKENDS = [_backend(name) for name in BACKENDS]
# generous settings for a small catalogue: the tests check wiring, not the speed trade-off
SMALL = {
    "exact": {},
    "faiss-hnsw": {"m": 16, "ef_construction": 100, "ef_search": 100},
    "faiss-ivf": {"nlist": 8, "nprobe": 8},
    "usearch-hnsw": {"connectivity": 16, "expansion_add": 100, "expansion_search": 100},
    "hnswlib": {"m": 16, "ef_construction": 100, "ef_search": 100},
}

# hand-made: item 10 points along x, 11 along y, 12 mostly x, 13 against x, 14 long and diagonal
HAND_VECTORS = np.array(
    [[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [-1.0, 0.0], [3.0, 3.0]], dtype=np.float32
)
HAND_IDS = np.array([10, 11, 12, 13, 14])


def _clustered(n: int = 600, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, dim)) * 3
    vectors = centres[rng.integers(0, 6, n)] + rng.standard_normal((n, dim))
    queries = centres[rng.integers(0, 6, 20)] + rng.standard_normal((20, dim))
    return vectors.astype(np.float32), queries.astype(np.float32)


def test_exact_inner_product_ranks_by_dot_product() -> None:
    index = AnnIndex.build(HAND_VECTORS, HAND_IDS, backend="exact", metric="ip")
    result = index.query([1.0, 0.0], 3)
    # dots with (1, 0): 1, 0, 0.9, -1, 3 -> 14, 10, 12
    assert result.ids.tolist() == [[14, 10, 12]]
    np.testing.assert_allclose(result.scores, [[3.0, 1.0, 0.9]], rtol=1e-6)


def test_exact_cosine_ignores_length() -> None:
    index = AnnIndex.build(HAND_VECTORS, HAND_IDS, backend="exact", metric="cosine")
    result = index.query([2.0, 0.0], 3)
    # cosines with x: 1, 0, 0.9/sqrt(0.82)=0.99388, -1, 1/sqrt(2)=0.70711
    assert result.ids.tolist() == [[10, 12, 14]]
    np.testing.assert_allclose(result.scores, [[1.0, 0.9 / np.sqrt(0.82), 1 / np.sqrt(2)]], 1e-5)


def test_exclusions_shared_and_per_query_and_padding() -> None:
    index = AnnIndex.build(HAND_VECTORS, HAND_IDS, backend="exact")
    shared = index.query([[1.0, 0.0], [0.0, 1.0]], 2, exclude=[14, 999])  # 999: not indexed
    # without 14: x-query -> 10, 12; y-query dots 0, 1, 0.1, 0 -> 11, 12
    assert shared.ids.tolist() == [[10, 12], [11, 12]]
    per_query = index.query([[1.0, 0.0], [0.0, 1.0]], 2, exclude=[[10], [11, 14]])
    assert per_query.ids.tolist() == [[14, 12], [12, 10]]
    padded = index.query([1.0, 0.0], 3, exclude=[10, 11, 12])
    assert padded.ids.tolist() == [[14, 13, -1]]
    assert padded.scores[0, 2] == -np.inf


@pytest.mark.parametrize("backend", ANN_BACKENDS)
@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_each_library_finds_the_exact_neighbours(backend: str, metric: str) -> None:
    vectors, queries = _clustered()
    ids = np.arange(vectors.shape[0]) * 7 + 3
    exact = AnnIndex.build(vectors, ids, backend="exact", metric=metric)
    index = AnnIndex.build(vectors, ids, backend=backend, metric=metric, params=SMALL[backend])
    truth, found = exact.query(queries, 10), index.query(queries, 10)
    recall = np.mean([np.isin(f, t).mean() for f, t in zip(found.ids, truth.ids, strict=True)])
    assert recall >= 0.95
    hit = found.ids[0] == truth.ids[0]
    np.testing.assert_allclose(found.scores[0][hit], truth.scores[0][hit], rtol=1e-4)
    assert np.all(np.diff(found.scores, axis=1) <= 1e-6)  # best first


@pytest.mark.parametrize("backend", ANN_BACKENDS)
def test_each_library_applies_exclusions(backend: str) -> None:
    vectors, queries = _clustered()
    ids = np.arange(vectors.shape[0])
    index = AnnIndex.build(vectors, ids, backend=backend, params=SMALL[backend])
    before = index.query(queries[:2], 10)
    dropped = [before.ids[0][:5].tolist(), before.ids[1][::2].tolist()]
    after = index.query(queries[:2], 10, exclude=dropped)
    for row in range(2):
        assert not np.isin(after.ids[row], dropped[row]).any()
        kept = [item for item in before.ids[row] if item not in dropped[row]]
        assert after.ids[row][: len(kept)].tolist() == kept


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_save_and_load_round_trip_with_hashes(backend: str, tmp_path: Path) -> None:
    vectors, queries = _clustered()
    ids = np.arange(vectors.shape[0]) + 1000
    index = AnnIndex.build(vectors, ids, backend=backend, metric="cosine", params=SMALL[backend])
    manifest_path = index.save(tmp_path / "ann")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["backend"] == backend
    assert (manifest["metric"], manifest["dim"], manifest["count"]) == ("cosine", 8, 600)
    assert manifest["parameters"] == {**default_params(backend), **SMALL[backend]}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / "ann" / name).read_bytes()).hexdigest() == digest
    loaded = AnnIndex.load(tmp_path / "ann")
    assert loaded.params() == index.params()
    np.testing.assert_array_equal(loaded.item_ids, ids)
    expected, got = (
        index.query(queries, 5, exclude=[1000]),
        loaded.query(queries, 5, exclude=[1000]),
    )
    np.testing.assert_array_equal(got.ids, expected.ids)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5)


def _saved(tmp_path: Path) -> Path:
    index = AnnIndex.build(HAND_VECTORS, HAND_IDS, backend="exact")
    index.save(tmp_path / "ann")
    return tmp_path / "ann"


def test_load_refuses_a_changed_file(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    ids_file = folder / "item_ids.npy"
    np.save(ids_file, np.array([10, 11, 12, 13, 15]), allow_pickle=False)
    with pytest.raises(UserError, match="does not match its SHA-256"):
        AnnIndex.load(folder)


def test_load_refuses_another_library_version(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["library_version"] = "0.1.0"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"written by numpy 0\.1\.0"):
        AnnIndex.load(folder)


def test_load_refuses_a_missing_or_broken_manifest(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        AnnIndex.load(tmp_path)
    folder = _saved(tmp_path)
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        AnnIndex.load(folder)
    (folder / MANIFEST).write_text(json.dumps({"format": "getit-ann-v1", "backend": "exact"}))
    with pytest.raises(UserError, match="lacks"):
        AnnIndex.load(folder)


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss is not installed")
def test_ivf_default_cells_shrink_with_the_catalogue() -> None:
    vectors, _ = _clustered(n=600)
    index = AnnIndex.build(vectors, np.arange(600), backend="faiss-ivf")
    assert index.params()["nlist"] == 15  # 600 // 39; 1024 cells for a large catalogue
    assert default_params("faiss-ivf")["nlist"] == 1024


def test_save_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    index = AnnIndex.build(HAND_VECTORS, HAND_IDS, backend="exact")
    with pytest.raises(UserError, match="not empty"):
        index.save(tmp_path)


@pytest.mark.parametrize("backend", ANN_BACKENDS)
def test_a_seeded_single_thread_build_repeats(backend: str) -> None:
    vectors, queries = _clustered(seed=3)
    ids = np.arange(vectors.shape[0])
    params = {**SMALL[backend]}
    if backend == "faiss-ivf":
        params["nprobe"] = 2  # few cells: the result depends on the k-means, hence on the seed
    first = AnnIndex.build(vectors, ids, backend=backend, params=params, seed=5).query(queries, 10)
    again = AnnIndex.build(vectors, ids, backend=backend, params=params, seed=5).query(queries, 10)
    np.testing.assert_array_equal(first.ids, again.ids)


@pytest.mark.parametrize("backend", ANN_BACKENDS)
def test_query_params_change_without_rebuilding(backend: str) -> None:
    vectors, _ = _clustered()
    index = AnnIndex.build(vectors, np.arange(600), backend=backend, params=SMALL[backend])
    (name,) = {"faiss-hnsw": ["ef_search"], "faiss-ivf": ["nprobe"]}.get(
        backend, ["expansion_search" if backend == "usearch-hnsw" else "ef_search"]
    )
    index.set_query_params(**{name: 3})
    assert index.params()[name] == 3
    build_param = next(p for p in default_params(backend) if p != name)
    with pytest.raises(UserError, match="unknown parameter"):
        index.set_query_params(**{build_param: 8})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "annoy"}, "backend must be one of"),
        ({"metric": "l2"}, "metric must be one of"),
        ({"params": {"ef_search": 10}}, "unknown parameter"),
        ({"backend": "faiss-hnsw", "params": {"m": 0}}, "m must be between"),
        ({"backend": "faiss-hnsw", "params": {"m": "big"}}, "m must be an integer"),
        ({"backend": "faiss-ivf", "params": {"nlist": 50}}, "exceeds the 5 items"),
        ({"threads": 0}, "threads must be"),
    ],
)
def test_bad_build_settings_are_user_errors(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"backend": "exact", **kwargs}
    if settings["backend"] in _MODULES:
        pytest.importorskip(_MODULES[str(settings["backend"])])
    with pytest.raises(UserError, match=message):
        AnnIndex.build(HAND_VECTORS, HAND_IDS, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("vectors", "ids", "message"),
    [
        (HAND_VECTORS, HAND_IDS[:4], "need as many item ids"),
        (HAND_VECTORS, np.array([1, 2, 3, 3, 4]), "must be unique"),
        (HAND_VECTORS, np.array(["a", "b", "c", "d", "e"]), "must be integers"),
        (np.where(HAND_VECTORS == 3.0, np.nan, HAND_VECTORS), HAND_IDS, "NaN or infinite"),
        (np.zeros((0, 2)), np.array([], dtype=np.int64), "non-empty 2-D"),
        ([["x", "y"]], [1], "must be numbers"),
    ],
)
def test_bad_vectors_are_user_errors(vectors: object, ids: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        AnnIndex.build(vectors, ids, backend="exact")  # type: ignore[arg-type]


def test_cosine_refuses_zero_vectors() -> None:
    with pytest.raises(UserError, match="zero vector"):
        AnnIndex.build(np.zeros((2, 3)), [1, 2], metric="cosine", backend="exact")
    index = AnnIndex.build(HAND_VECTORS, HAND_IDS, metric="cosine", backend="exact")
    with pytest.raises(UserError, match="zero vector"):
        index.query([0.0, 0.0], 1)


def test_bad_queries_are_user_errors() -> None:
    index = AnnIndex.build(HAND_VECTORS, HAND_IDS, backend="exact")
    with pytest.raises(UserError, match="dimension 3, the index has 2"):
        index.query([1.0, 0.0, 0.0], 1)
    with pytest.raises(UserError, match="k must be between 1 and 5"):
        index.query([1.0, 0.0], 6)
    with pytest.raises(UserError, match="k must be between"):
        index.query([1.0, 0.0], 0)
    with pytest.raises(UserError, match="2 exclusion lists given for 1 queries"):
        index.query([1.0, 0.0], 1, exclude=[[10], [11]])
    with pytest.raises(UserError, match="excluded item ids must be integers"):
        index.query([1.0, 0.0], 1, exclude=["10"])  # type: ignore[arg-type]
