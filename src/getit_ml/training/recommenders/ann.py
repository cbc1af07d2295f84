"""Approximate nearest neighbours over item vectors: build, query top-k, save and load.

Retrieval at serving time asks "which items score highest for this user vector?" — an
inner-product (or cosine) top-k over the catalogue. :class:`AnnIndex` answers it with one of
several backends behind one interface:

- ``exact`` — brute force in numpy (one matrix-vector product and a partial sort): the reference
  that the others are measured against, and a fine choice for small catalogues;
- ``faiss-hnsw`` — faiss ``IndexHNSWFlat`` (graph search; parameters ``m``, ``ef_construction``,
  ``ef_search``);
- ``faiss-ivf`` — faiss ``IndexIVFFlat`` (k-means cells, exact search in the ``nprobe`` nearest
  cells; parameters ``nlist`` — by default 1024, fewer for a catalogue under 39 x 1024 items —
  and ``nprobe``);
- ``usearch-hnsw`` — usearch ``Index`` (HNSW; ``connectivity``, ``expansion_add``,
  ``expansion_search``);
- ``hnswlib`` — hnswlib ``Index`` (HNSW; ``m``, ``ef_construction``, ``ef_search``).

Metrics: ``ip`` (inner product: the score of a factor model such as ALS's or BPR's factors) and
``cosine`` (vectors and queries are L2-normalised, then inner product). Scores returned are
always "higher is better" (the inner product or the cosine), whatever the library's own
distance convention (usearch and hnswlib return ``1 - dot``).

The choice: **faiss IVF-Flat** (``faiss-ivf``, :data:`RECOMMENDED`), measured by
``benchmarks/recs_ann.py`` (100,000 item vectors of dimension 64, 1,000 queries, inner product,
top-20, one query at a time on one thread; the rule: the lowest p99 among settings with
recall@20 >= 0.95 against exact search; 2 shared CPUs at load average 1.0-1.5), on two families:

- clustered Gaussians (the benchmark's default): IVF nlist=1024, nprobe=16: recall 0.976, p99
  0.077 ms (exact: 1.44 ms). The HNSW libraries reach 0.96 at ef=64 with p99 0.11-0.23 ms
  (hnswlib 0.114, faiss 0.133, usearch 0.234); IVF also builds 4-5x faster and holds no graph.
- ALS factors of a synthetic catalogue (``--vectors als``; Pareto popularity, so factor norms
  run from 0 to 28 around a median of 0.02): inner-product HNSW collapses in all three
  libraries — recall@20 <= 0.42 at ef=256, 0.41 at ef=4096 (faiss) — because with raw inner
  product every node's neighbour list fills with the few long, popular vectors, and the
  middling items of a user's top-20 are hard to reach. IVF degrades gracefully: 0.65 at
  nprobe=16, 0.94 at 256, 0.985 at 512 (p99 1.14 ms against exact's 1.62 ms: a small gain).

So IVF is the one family that met the floor on both, and ``nprobe`` is the knob that must be set
per model's vectors: 16 suffices for clustered factors, popularity-skewed inner-product factors
need hundreds (or exact search, which at 100,000 items costs ~1.5 ms). It is recorded in the
manifest and changed without a rebuild (:meth:`AnnIndex.set_query_params`); check recall against
``exact`` on held-out user vectors before registering an index. The cells are trained on the
vectors they index, so an index is rebuilt with each model version. ``faiss-cpu`` (MIT; its
wheel bundles OpenBLAS, BSD-3, and GCC runtime libraries under the runtime exception) is the one
package added to the pins: its dependencies (numpy, packaging) were pinned already. usearch and
hnswlib stay selectable for the benchmark and import only when used; they are not pinned
(hnswlib 0.8.0 is a source distribution that needs a C++ compiler; usearch needs ``numkong``).

Exclusions (a user's already-bought items, say) are applied by asking the index for ``k`` plus
the number of excluded items and dropping those: the result is the index's top-k among the items
not excluded. Excluded ids the index does not hold are ignored (they could not be returned).

Files: :meth:`AnnIndex.save` writes the library's index file, ``item_ids.npy`` and
``manifest.json`` (format, backend, library and version, metric, dim, count, parameters, the
item-id file and the SHA-256 of every file); :meth:`AnnIndex.load` refuses a folder whose files
do not match their hashes, or a library whose major.minor version differs from the one that
wrote it, so the registry can version an index with the model that made its vectors. The ids are a
hashed file of their own, which keeps the manifest small at catalogue scale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from getit_ml.errors import UserError
from getit_ml.training.interactions import FloatMatrix, IntArray
from getit_ml.training.recommenders._base import choice_param, int_param

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "METRICS", "RECOMMENDED", "AnnIndex", "AnnResult", "default_params"]

BACKENDS: Final = ("exact", "faiss-hnsw", "faiss-ivf", "usearch-hnsw", "hnswlib")
METRICS: Final = ("ip", "cosine")
MANIFEST: Final = "manifest.json"
FORMAT: Final = "getit-ann-v1"
_IDS_FILE: Final = "item_ids.npy"
_EXACT_BLOCK: Final = 256

#: The backend and parameters chosen from the benchmark (see the module docstring).
RECOMMENDED: Final[Mapping[str, Any]] = {
    "backend": "faiss-ivf",
    "params": {"nlist": 1024, "nprobe": 16},
}

# backend -> (the distribution whose version the manifest records, the index file's name)
_LIBRARY: Final[Mapping[str, tuple[str | None, str]]] = {
    "exact": (None, "vectors.npy"),
    "faiss-hnsw": ("faiss-cpu", "index.faiss"),
    "faiss-ivf": ("faiss-cpu", "index.faiss"),
    "usearch-hnsw": ("usearch", "index.usearch"),
    "hnswlib": ("hnswlib", "index.hnswlib"),
}
# the HNSW defaults are the benchmark's build settings, at the search setting that reached 0.95
_DEFAULTS: Final[Mapping[str, Mapping[str, int]]] = {
    "exact": {},
    "faiss-hnsw": {"m": 32, "ef_construction": 200, "ef_search": 64},
    "faiss-ivf": {"nlist": 1024, "nprobe": 16},
    "usearch-hnsw": {"connectivity": 32, "expansion_add": 200, "expansion_search": 64},
    "hnswlib": {"m": 32, "ef_construction": 200, "ef_search": 64},
}
# the parameters that only change how a built index is searched (set_query_params)
_QUERY_PARAMS: Final[Mapping[str, frozenset[str]]] = {
    "exact": frozenset(),
    "faiss-hnsw": frozenset({"ef_search"}),
    "faiss-ivf": frozenset({"nprobe"}),
    "usearch-hnsw": frozenset({"expansion_search"}),
    "hnswlib": frozenset({"ef_search"}),
}
_BOUNDS: Final[Mapping[str, tuple[int, int]]] = {
    **dict.fromkeys(("m", "connectivity"), (2, 512)),
    **dict.fromkeys(
        ("ef_construction", "expansion_add", "ef_search", "expansion_search"), (1, 10**5)
    ),
    **dict.fromkeys(("nlist", "nprobe"), (1, 10**6)),
}


def default_params(backend: str) -> dict[str, int]:
    """The parameters a backend uses for those not given."""
    return dict(_DEFAULTS[choice_param("ann", "backend", backend, BACKENDS)])


def _check_params(
    backend: str, given: Mapping[str, Any], allowed: set[str] | frozenset[str]
) -> dict[str, int]:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise UserError(
            f"ann {backend}: unknown parameter(s) {', '.join(unknown)}; "
            f"expected {', '.join(sorted(allowed)) or 'none'}"
        )
    checked: dict[str, int] = {}
    for name, value in given.items():
        low, high = _BOUNDS[name]
        checked[name] = int_param(f"ann {backend}", name, value, low=low, high=high)
    return checked


def _library_version(distribution: str | None) -> str:
    if distribution is None:
        return np.__version__
    try:
        return version(distribution)
    except PackageNotFoundError as error:
        raise UserError(
            f"the {distribution} package is not installed; install it (pip install {distribution}) "
            "or choose another ANN backend"
        ) from error


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _as_vectors(values: npt.ArrayLike, what: str, dim: int | None = None) -> FloatMatrix:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise UserError(f"ann: {what} must be numbers ({error})") from error
    if array.ndim == 1 and dim is not None:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(f"ann: {what} must be a non-empty 2-D array (got shape {array.shape})")
    if dim is not None and array.shape[1] != dim:
        raise UserError(f"ann: {what} have dimension {array.shape[1]}, the index has {dim}")
    if not np.all(np.isfinite(array)):
        raise UserError(f"ann: {what} contain NaN or infinite values")
    return np.ascontiguousarray(array)


def _normalised(vectors: FloatMatrix, what: str) -> FloatMatrix:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise UserError(f"ann: {what} include a zero vector, whose cosine is undefined")
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


@contextlib.contextmanager
def _faiss_threads(faiss: Any, threads: int) -> Iterator[None]:
    # faiss's OpenMP thread count is process-wide: set it for the call, then put it back
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@dataclass(frozen=True)
class AnnResult:
    """Top-k per query: ``ids`` (item ids, int64) and ``scores`` (float32, higher is better),
    both ``(n_queries, k)``, best first. Where fewer than ``k`` items are left after the
    exclusions (or the approximate search found fewer), the row ends in id ``-1`` with score
    ``-inf`` rather than being shortened."""

    ids: IntArray
    scores: FloatMatrix


class AnnIndex:
    """An inner-product / cosine top-k index over item vectors. Build with :meth:`build`, read
    one back with :meth:`load`."""

    def __init__(
        self,
        backend: str,
        metric: str,
        params: Mapping[str, int],
        item_ids: IntArray,
        dim: int,
        native: Any,
    ) -> None:
        self.backend = backend
        self.metric = metric
        self.dim = dim
        self.item_ids = item_ids
        self._params = dict(params)
        self._native = native
        self._positions = {int(item): position for position, item in enumerate(item_ids)}
        self._apply_query_params()

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        vectors: npt.ArrayLike,
        item_ids: npt.ArrayLike,
        *,
        backend: str = "faiss-ivf",
        metric: str = "ip",
        params: Mapping[str, Any] | None = None,
        seed: int = 42,
        threads: int = 1,
    ) -> AnnIndex:
        """Index ``vectors`` (one row per item, ``item_ids`` in the same order).

        ``threads`` is for the build only (queries run on one thread: a serving process answers
        one request per query and scales by processes); one thread makes an HNSW build repeat
        exactly, so it is the default.
        """
        backend = choice_param("ann", "backend", backend, BACKENDS)
        metric = choice_param("ann", "metric", metric, METRICS)
        threads = int_param("ann", "threads", threads, low=1)
        data = _as_vectors(vectors, "item vectors")
        ids = np.asarray(item_ids)
        if ids.ndim != 1 or ids.shape[0] != data.shape[0]:
            raise UserError(
                f"ann: {data.shape[0]} item vectors need as many item ids (got shape {ids.shape})"
            )
        if not np.issubdtype(ids.dtype, np.integer):
            raise UserError("ann: item ids must be integers")
        ids = ids.astype(np.int64)
        if np.unique(ids).shape[0] != ids.shape[0]:
            raise UserError("ann: item ids must be unique")
        chosen = default_params(backend)
        given = _check_params(backend, params or {}, set(chosen))
        chosen.update(given)
        if backend == "faiss-ivf" and "nlist" not in given:
            # k-means wants ~39 points per cell (faiss warns below): fewer cells when small
            chosen["nlist"] = min(chosen["nlist"], max(1, data.shape[0] // 39))
        if backend == "faiss-ivf" and chosen["nlist"] > data.shape[0]:
            raise UserError(
                f"ann faiss-ivf: nlist {chosen['nlist']} exceeds the {data.shape[0]} items"
            )
        _library_version(_LIBRARY[backend][0])
        if metric == "cosine":
            data = _normalised(data, "item vectors")
        native = _build_native(backend, data, chosen, seed, threads)
        logger.info("built a %s index (%s) over %d items", backend, metric, data.shape[0])
        return cls(backend, metric, chosen, ids, data.shape[1], native)

    def params(self) -> dict[str, int]:
        """The backend's parameters (build and query)."""
        return dict(self._params)

    def set_query_params(self, **params: Any) -> None:
        """Change the search-time parameters (``ef_search``, ``nprobe``, ``expansion_search``)
        of a built index without rebuilding it."""
        self._params.update(_check_params(self.backend, params, _QUERY_PARAMS[self.backend]))
        self._apply_query_params()

    def _apply_query_params(self) -> None:
        if self.backend == "faiss-hnsw":
            self._native.hnsw.efSearch = self._params["ef_search"]
        elif self.backend == "faiss-ivf":
            self._native.nprobe = self._params["nprobe"]
        elif self.backend == "usearch-hnsw":
            self._native.expansion_search = self._params["expansion_search"]
        elif self.backend == "hnswlib":
            self._native.set_ef(self._params["ef_search"])

    def __len__(self) -> int:
        return int(self.item_ids.shape[0])

    # ------------------------------------------------------------------ querying
    def query(
        self,
        queries: npt.ArrayLike,
        k: int,
        *,
        exclude: Sequence[int] | Sequence[Sequence[int]] | None = None,
    ) -> AnnResult:
        """The ``k`` best items for each query vector (one vector, or a 2-D array of them).

        ``exclude`` is a list of item ids left out of every query's result, or one list per
        query.
        """
        data = _as_vectors(queries, "queries", self.dim)
        k = int_param("ann", "k", k, low=1, high=len(self))
        if self.metric == "cosine":
            data = _normalised(data, "queries")
        excluded = self._excluded(exclude, data.shape[0])
        fetch = min(len(self), k + max((len(row) for row in excluded), default=0))
        positions, scores = self._search(data, fetch)
        out_ids = np.full((data.shape[0], k), -1, dtype=np.int64)
        out_scores = np.full((data.shape[0], k), -np.inf, dtype=np.float32)
        for row in range(data.shape[0]):
            keep = positions[row] >= 0
            if excluded[row]:
                keep &= ~np.isin(positions[row], list(excluded[row]))
            found = positions[row][keep][:k]
            out_ids[row, : found.shape[0]] = self.item_ids[found]
            out_scores[row, : found.shape[0]] = scores[row][keep][:k]
        return AnnResult(out_ids, out_scores)

    def _excluded(
        self, exclude: Sequence[int] | Sequence[Sequence[int]] | None, n_queries: int
    ) -> list[set[int]]:
        if exclude is None:
            return [set() for _ in range(n_queries)]
        rows: list[Any] = list(exclude)
        nested = bool(rows) and all(
            isinstance(row, Sequence | np.ndarray) and not isinstance(row, str | bytes)
            for row in rows
        )
        if nested:
            if len(rows) != n_queries:
                raise UserError(f"ann: {len(rows)} exclusion lists given for {n_queries} queries")
            lists: list[list[Any]] = [list(row) for row in rows]
        else:
            lists = [rows] * n_queries
        result: list[set[int]] = []
        for items in lists:
            positions: set[int] = set()
            for item in items:
                if isinstance(item, bool) or not isinstance(item, int | np.integer):
                    raise UserError(f"ann: excluded item ids must be integers (got {item!r})")
                position = self._positions.get(int(item))
                if position is not None:  # an id the index lacks could not be returned anyway
                    positions.add(position)
            result.append(positions)
        return result

    def _search(self, data: FloatMatrix, fetch: int) -> tuple[IntArray, FloatMatrix]:
        """Positions (-1 where nothing was found) and scores of the ``fetch`` best per query."""
        native = self._native
        if self.backend == "exact":
            return _exact_top(native, data, fetch)
        if self.backend in ("faiss-hnsw", "faiss-ivf"):
            import faiss

            with _faiss_threads(faiss, 1):
                scores, labels = native.search(data, fetch)
            return labels.astype(np.int64), scores.astype(np.float32)
        if self.backend == "usearch-hnsw":
            matches = native.search(data, fetch, threads=1)
            keys = np.asarray(matches.keys).reshape(data.shape[0], -1)
            distances = np.asarray(matches.distances).reshape(data.shape[0], -1)
            # a one-row batch comes back as one Matches (no .counts): its length is the count
            counts = np.asarray(getattr(matches, "counts", [len(matches.keys)])).reshape(-1)
            positions = keys.astype(np.int64)
            found_scores = (1.0 - distances).astype(np.float32)
            missing = np.arange(positions.shape[1])[None, :] >= counts[:, None]
            positions[missing] = -1
            return positions, found_scores
        # hnswlib: ef below the number asked for cannot return them all
        native.set_ef(max(self._params["ef_search"], fetch))
        try:
            labels, distances = native.knn_query(data, k=fetch, num_threads=1)
        finally:
            native.set_ef(self._params["ef_search"])
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    # ------------------------------------------------------------------ files
    def save(self, directory: Path | str) -> Path:
        """Write the index into ``directory`` (created; must be empty if it exists) and return
        the manifest's path."""
        folder = Path(directory)
        if folder.exists() and any(folder.iterdir()):
            raise UserError(f"ann: {folder} is not empty; save an index into a new folder")
        folder.mkdir(parents=True, exist_ok=True)
        distribution, index_file = _LIBRARY[self.backend]
        _save_native(self.backend, self._native, folder / index_file)
        np.save(folder / _IDS_FILE, self.item_ids, allow_pickle=False)
        manifest = {
            "format": FORMAT,
            "backend": self.backend,
            "library": distribution or "numpy",
            "library_version": _library_version(distribution),
            "metric": self.metric,
            "dim": self.dim,
            "count": len(self),
            "parameters": self._params,
            "index_file": index_file,
            "item_ids_file": _IDS_FILE,
            "files": {name: _sha256(folder / name) for name in (index_file, _IDS_FILE)},
        }
        path = folder / MANIFEST
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path | str) -> AnnIndex:
        """Read an index written by :meth:`save`, checking every file's SHA-256 and the
        library's version."""
        folder = Path(directory)
        manifest = _read_manifest(folder)
        backend = choice_param("ann", "backend", manifest["backend"], BACKENDS)
        metric = choice_param("ann", "metric", manifest["metric"], METRICS)
        distribution, index_file = _LIBRARY[backend]
        if manifest.get("index_file") != index_file or manifest.get("item_ids_file") != _IDS_FILE:
            raise UserError(f"ann: {folder / MANIFEST} names unexpected files")
        files = manifest.get("files")
        if not isinstance(files, dict) or set(files) != {index_file, _IDS_FILE}:
            raise UserError(
                f"ann: {folder / MANIFEST} must list the hash of {index_file} and {_IDS_FILE}"
            )
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                raise UserError(f"ann: {path} is missing")
            if _sha256(path) != expected:
                raise UserError(f"ann: {path} does not match its SHA-256 in the manifest")
        _check_version(distribution, str(manifest["library_version"]))
        params = default_params(backend)
        params.update(_check_params(backend, manifest["parameters"], set(params)))
        ids = np.load(folder / _IDS_FILE, allow_pickle=False)
        dim = int(manifest["dim"])
        if ids.ndim != 1 or ids.shape[0] != int(manifest["count"]):
            raise UserError(f"ann: {folder / _IDS_FILE} does not hold {manifest['count']} ids")
        native = _load_native(backend, folder / index_file, dim, ids.shape[0])
        return cls(backend, metric, params, ids.astype(np.int64), dim, native)


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"ann: {path} not found; is {folder} a saved index?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"ann: {path} is not valid JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"ann: {path} is not a {FORMAT} manifest")
    needed = {"backend", "metric", "dim", "count", "parameters", "library_version", "files"}
    missing = sorted(needed - set(manifest))
    if missing:
        raise UserError(f"ann: {path} lacks {', '.join(missing)}")
    if not isinstance(manifest["parameters"], dict):
        raise UserError(f"ann: {path}: parameters must be an object")
    return manifest


def _check_version(distribution: str | None, written: str) -> None:
    installed = _library_version(distribution)
    if installed.split(".")[:2] != written.split(".")[:2]:
        raise UserError(
            f"ann: the index was written by {distribution or 'numpy'} {written}, this environment "
            f"has {installed}; rebuild the index from the model's item vectors"
        )
    if installed != written:
        logger.warning("index written by %s %s, read with %s", distribution, written, installed)


# ---------------------------------------------------------------------- the backends
def _exact_top(
    vectors: FloatMatrix, queries: FloatMatrix, fetch: int
) -> tuple[IntArray, FloatMatrix]:
    # in blocks of queries: a block's score matrix is block x catalogue floats, not all of them
    positions = np.empty((queries.shape[0], fetch), dtype=np.int64)
    scores = np.empty((queries.shape[0], fetch), dtype=np.float32)
    for start in range(0, queries.shape[0], _EXACT_BLOCK):
        block = queries[start : start + _EXACT_BLOCK] @ vectors.T
        if fetch < block.shape[1]:
            top = np.argpartition(-block, fetch - 1, axis=1)[:, :fetch]
        else:
            top = np.broadcast_to(np.arange(block.shape[1]), block.shape).copy()
        top_scores = np.take_along_axis(block, top, axis=1)
        # ties broken by position so that the reference is deterministic
        order = np.lexsort((top, -top_scores), axis=1)
        positions[start : start + _EXACT_BLOCK] = np.take_along_axis(top, order, axis=1)
        scores[start : start + _EXACT_BLOCK] = np.take_along_axis(top_scores, order, axis=1)
    return positions, scores


def _build_native(
    backend: str, data: FloatMatrix, params: Mapping[str, int], seed: int, threads: int
) -> Any:
    n, dim = data.shape
    if backend == "exact":
        return data
    if backend in ("faiss-hnsw", "faiss-ivf"):
        import faiss

        with _faiss_threads(faiss, threads):
            if backend == "faiss-hnsw":
                index: Any = faiss.IndexHNSWFlat(dim, params["m"], faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = params["ef_construction"]
            else:
                quantizer = faiss.IndexFlatIP(dim)
                index = faiss.IndexIVFFlat(
                    quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT
                )
                index.cp.seed = seed
                index.train(data)
            index.add(data)
        return index
    if backend == "usearch-hnsw":
        from usearch.index import Index  # type: ignore[import-not-found,unused-ignore]  # unpinned

        graph: Any = Index(
            ndim=dim,
            metric="ip",
            dtype="f32",
            connectivity=params["connectivity"],
            expansion_add=params["expansion_add"],
            expansion_search=params["expansion_search"],
        )
        graph.add(np.arange(n, dtype=np.uint64), data, threads=threads)
        return graph
    import hnswlib  # type: ignore[import-untyped,import-not-found,unused-ignore]  # unpinned

    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(
        max_elements=n, M=params["m"], ef_construction=params["ef_construction"], random_seed=seed
    )
    index.add_items(data, np.arange(n), num_threads=threads)
    return index


def _save_native(backend: str, native: Any, path: Path) -> None:
    if backend == "exact":
        np.save(path, native, allow_pickle=False)
    elif backend in ("faiss-hnsw", "faiss-ivf"):
        import faiss

        faiss.write_index(native, str(path))
    elif backend == "usearch-hnsw":
        native.save(str(path))
    else:
        native.save_index(str(path))


def _load_native(backend: str, path: Path, dim: int, count: int) -> Any:
    try:
        if backend == "exact":
            native = np.load(path, allow_pickle=False)
            shape = native.shape
        elif backend in ("faiss-hnsw", "faiss-ivf"):
            import faiss

            native = faiss.read_index(str(path))
            shape = (native.ntotal, native.d)
        elif backend == "usearch-hnsw":
            from usearch.index import Index  # type: ignore[import-not-found,unused-ignore]  # unpinned

            native = Index.restore(str(path))
            if native is None:  # restore gives None for a file it cannot read
                raise UserError(f"ann: cannot read {path} as a usearch index")
            shape = (len(native), native.ndim)
        else:
            import hnswlib  # type: ignore[import-untyped,import-not-found,unused-ignore]

            native = hnswlib.Index(space="ip", dim=dim)
            native.load_index(str(path), max_elements=count)
            shape = (native.get_current_count(), native.dim)
    except (RuntimeError, ValueError, OSError) as error:
        raise UserError(f"ann: cannot read {path} ({error})") from error
    if tuple(shape) != (count, dim):
        raise UserError(
            f"ann: {path} holds {shape[0]} x {shape[1]} vectors, the manifest {count} x {dim}"
        )
    return native
