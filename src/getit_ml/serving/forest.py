"""The booster's trees as flat arrays, walked with numpy: the scorer's fast path for small batches.

XGBoost's ``inplace_predict`` costs ~250 µs for one row of a 300-tree depth-6 model on this kind of
machine, almost all of it per-call overhead; walking all trees at once as arrays (one gather per
tree level) takes ~50 µs. There is no compiler involved (treelite / tl2cgen are not dependencies
of the platform): the model is read from the booster's own JSON.

Semantics follow XGBoost exactly: features as float32, ``x < split_condition`` goes left, a
missing value (NaN) follows the node's default direction, leaf values summed in float32 plus the
base margin (``logit(base_score)``), then the logistic function. :func:`verified_forest` builds
the forest only for what it supports (``binary:logistic``, one output group, numeric splits) and
only if it agrees with ``inplace_predict`` on random rows with missing values (to 1e-5); otherwise
the scorer keeps XGBoost. Large batches go to XGBoost anyway (its threads and cache-friendly loop
win there).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import xgboost as xgb

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: Rows per request up to which the flat forest is used.
MAX_FLAT_ROWS: Final = 32
AGREEMENT: Final = 1e-5


@dataclass(frozen=True)
class FlatForest:
    """All trees of a booster in flat arrays (leaves point to themselves, so every walk takes
    exactly ``depth`` steps)."""

    roots: IntArray
    features: IntArray
    conditions: npt.NDArray[np.float32]
    default_left: npt.NDArray[np.bool_]
    #: ``children[2 * node]`` is the left child, ``children[2 * node + 1]`` the right one.
    children: IntArray
    leaf_values: npt.NDArray[np.float32]
    depth: int
    base_margin: float
    n_features: int

    def predict(self, matrix: FloatArray) -> FloatArray:
        """Probabilities for the rows of ``matrix`` (NaN = missing)."""
        x = np.asarray(matrix, dtype=np.float32)
        missing = np.isnan(x)
        if x.shape[0] == 1:
            row, row_missing = x[0], missing[0]
            node = self.roots
            for _ in range(self.depth):
                feature = self.features.take(node)
                left = (row.take(feature) < self.conditions.take(node)) | (
                    row_missing.take(feature) & self.default_left.take(node)
                )
                node = self.children.take(2 * node + ~left)
            margins = np.array([self.leaf_values.take(node).sum(dtype=np.float32)])
        else:
            rows = np.arange(x.shape[0])[:, None]
            node = np.broadcast_to(self.roots, (x.shape[0], self.roots.size))
            for _ in range(self.depth):
                feature = self.features[node]
                left = (x[rows, feature] < self.conditions[node]) | (
                    missing[rows, feature] & self.default_left[node]
                )
                node = self.children[2 * node + ~left]
            margins = self.leaf_values[node].sum(axis=1, dtype=np.float32)
        margin = margins.astype(np.float64) + self.base_margin
        return np.asarray(1.0 / (1.0 + np.exp(-margin)), dtype=np.float64)


def _unsupported(model: dict[str, Any]) -> str | None:
    learner = model["learner"]
    objective = learner["objective"]["name"]
    if objective != "binary:logistic":
        return f"objective {objective}"
    if learner["gradient_booster"]["name"] != "gbtree":
        return f"booster {learner['gradient_booster']['name']}"
    trees_info = learner["gradient_booster"]["model"].get("tree_info", [])
    if any(int(group) != 0 for group in trees_info):
        return "more than one output group"
    for tree in learner["gradient_booster"]["model"]["trees"]:
        if any(int(kind) != 0 for kind in tree.get("split_type", [])):
            return "categorical splits"
    return None


def _base_score(raw: str) -> float:
    return float(str(raw).strip("[]").split(",")[0])


def flat_forest(booster: xgb.Booster) -> FlatForest | None:
    """The booster as a :class:`FlatForest`, or ``None`` (logged) when it has what the forest
    does not support."""
    model: dict[str, Any] = json.loads(bytes(booster.save_raw(raw_format="json")))
    reason = _unsupported(model)
    if reason is not None:
        logger.info("flat forest not used: %s", reason)
        return None
    learner = model["learner"]
    base = _base_score(learner["learner_model_param"]["base_score"])
    if not 0.0 < base < 1.0:
        logger.info("flat forest not used: base_score %s", base)
        return None
    roots, features, conditions, defaults, lefts, rights, leaves = [], [], [], [], [], [], []
    offset, depth = 0, 0
    for tree in learner["gradient_booster"]["model"]["trees"]:
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        split = np.asarray(tree["split_conditions"], dtype=np.float32)
        is_leaf = left == -1
        index = np.arange(left.size, dtype=np.int64) + offset
        roots.append(offset)
        lefts.append(np.where(is_leaf, index, left + offset))
        rights.append(np.where(is_leaf, index, right + offset))
        features.append(np.where(is_leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
        conditions.append(np.where(is_leaf, np.float32(np.inf), split))
        defaults.append(np.where(is_leaf, True, np.asarray(tree["default_left"], dtype=bool)))
        leaves.append(np.where(is_leaf, split, np.float32(0)))
        depth = max(depth, _depth(left, right))
        offset += left.size
    children = np.empty(2 * offset, dtype=np.int64)
    children[0::2] = np.concatenate(lefts)
    children[1::2] = np.concatenate(rights)
    return FlatForest(
        roots=np.asarray(roots, dtype=np.int64),
        features=np.concatenate(features),
        conditions=np.concatenate(conditions).astype(np.float32),
        default_left=np.concatenate(defaults).astype(bool),
        children=children,
        leaf_values=np.concatenate(leaves).astype(np.float32),
        depth=depth,
        base_margin=math.log(base / (1.0 - base)),
        n_features=int(booster.num_features()),
    )


def _depth(left: IntArray, right: IntArray) -> int:
    depth = np.zeros(left.size, dtype=np.int64)
    for node in range(left.size):  # XGBoost numbers a child after its parent
        if left[node] != -1:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    return int(depth.max()) if depth.size else 0


def verified_forest(booster: xgb.Booster, *, rows: int = 512, seed: int = 0) -> FlatForest | None:
    """:func:`flat_forest`, kept only if it agrees with ``inplace_predict`` on random rows (a
    tenth of the values missing) to :data:`AGREEMENT`."""
    forest = flat_forest(booster)
    if forest is None:
        return None
    rng = np.random.default_rng(seed)
    # Rows at three scales (flags, counts, taka amounts), a tenth of the values missing.
    scales = np.repeat([1.0, 100.0, 10_000.0], -(-rows // 3))[:rows, None]
    probe = rng.normal(size=(rows, forest.n_features)) * scales
    probe[rng.random(probe.shape) < 0.1] = np.nan
    reference = np.asarray(booster.inplace_predict(probe, missing=np.nan), dtype=np.float64)
    worst = float(np.max(np.abs(forest.predict(probe) - reference)))
    single = float(abs(forest.predict(probe[:1])[0] - reference[0]))
    if max(worst, single) > AGREEMENT:
        logger.warning("flat forest disagrees with XGBoost by %.3g: not used", max(worst, single))
        return None
    logger.info("flat forest: %d trees, depth %d, agrees to %.1e", forest.roots.size,
                forest.depth, worst)  # fmt: skip
    return forest
