"""How a log of interactions is split for evaluating recommenders (see
:mod:`getit_ml.training.recs_protocol` for the whole protocol).

**The log.** :class:`InteractionLog` holds the (user, item) pairs in the order first recorded; rows
repeating a pair are repeated feedback, summed into its weight (and counted), the pair's time
being its first (when the user found the item). Models train on the binary matrix (the user
interacted with the item), and every held-out pair is relevant (binary relevance).

**The splits** (:func:`split`):

* ``stratified`` — per user, a fraction (0.75) of the user's pairs to train, the rest to test,
  drawn with a seed: Microsoft Recommenders' ``python_stratified_split`` exactly (a uniform number
  per row from ``np.random.seed(seed)`` in row order, rows sorted by it within each user, a row
  trains when its rank / the user's count <= the fraction), so that with the same rows in the
  same order the split is theirs. A user with fewer than ``min_interactions`` (2) pairs, or whose
  share would leave no training pair, stays wholly in train (it would be cold), and is counted.
* ``leave-last-out`` — each user's last pair by time (ties: the later row) to test; a user with a
  single pair stays in train. Needs real timestamps.
* ``temporal`` — a global cut: the pairs after the time by which ``fraction`` of all pairs had
  happened go to test (pairs at the cut's very time stay in train). Test pairs of users or items
  with no training pair are cold start, which a warm model cannot score: they are removed from
  the test part and counted, never scored.

Test items unseen in training under ``stratified`` and ``leave-last-out`` stay relevant (the
Recommenders protocol keeps them) and are counted in the split's report. Both time-based
protocols refuse a log whose interactions all share one time (an import without timestamps).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from getit_ml.errors import UserError
from getit_ml.training.interactions import IntArray, InteractionMatrix

ProtocolName = Literal["stratified", "leave-last-out", "temporal"]
PROTOCOLS: Final[tuple[str, ...]] = get_args(ProtocolName)
#: Microsoft Recommenders' default training share and seed.
DEFAULT_FRACTION: Final = 0.75
DEFAULT_SEED: Final = 42
#: The file ``getit-ml data import interactions`` writes (the ``interactions`` contract).
INTERACTIONS_FILE: Final = "interactions.parquet"

BoolArray = npt.NDArray[np.bool_]


# ------------------------------------------------------------------------------ the log
@dataclass(frozen=True)
class InteractionLog:
    """Unique (user, item) pairs in the order first recorded: positions on the axes
    ``user_ids`` / ``item_ids`` (sorted ids), a weight (rows summed) and, when known, a time
    (any integer unit; the contract's is microseconds). A part of a split is a log on the same
    axes, so positions agree across parts."""

    users: IntArray
    items: IntArray
    weights: npt.NDArray[np.float32]
    times: IntArray | None
    user_ids: IntArray
    item_ids: IntArray
    #: Rows of the source that repeated an earlier pair (summed into its weight).
    merged_rows: int = 0

    @property
    def n_pairs(self) -> int:
        return len(self.users)

    @classmethod
    def from_rows(
        cls,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        times: npt.ArrayLike | None = None,
    ) -> InteractionLog:
        """A log from rows of (user id, item id[, weight][, time]); repeated pairs are merged
        (weights summed, the first time kept) in the order of their first row."""
        user_arr = np.asarray(users)
        item_arr = np.asarray(items)
        if user_arr.ndim != 1 or user_arr.shape != item_arr.shape:
            raise UserError("users and items must be one-dimensional and of the same length")
        if len(user_arr) == 0:
            raise UserError("there are no interactions to evaluate")
        if not (
            np.issubdtype(user_arr.dtype, np.integer) and np.issubdtype(item_arr.dtype, np.integer)
        ):
            raise UserError("user and item ids must be integers (the import maps other ids)")
        weight_arr = (
            np.ones(len(user_arr), np.float64) if weights is None else np.asarray(weights, float)
        )
        if weight_arr.shape != user_arr.shape or not np.all(np.isfinite(weight_arr)):
            raise UserError("weights must be finite, one per interaction")
        if np.any(weight_arr <= 0):
            raise UserError(
                f"{int((weight_arr <= 0).sum())} interaction weight(s) are not positive"
            )
        time_arr = None if times is None else np.asarray(times, dtype=np.int64)
        if time_arr is not None and time_arr.shape != user_arr.shape:
            raise UserError("times must have one value per interaction")
        user_ids, user_pos = np.unique(user_arr.astype(np.int64), return_inverse=True)
        item_ids, item_pos = np.unique(item_arr.astype(np.int64), return_inverse=True)
        key = user_pos.astype(np.int64) * len(item_ids) + item_pos
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        # Pairs in the order of their first row (np.unique sorts by key; undo that).
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        pair_of_row = rank[inverse]
        summed = np.bincount(pair_of_row, weights=weight_arr, minlength=len(order))
        pair_times = None
        if time_arr is not None:
            pair_times = np.full(len(order), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(pair_times, pair_of_row, time_arr)
        return cls(
            users=user_pos[first[order]].astype(np.int64),
            items=item_pos[first[order]].astype(np.int64),
            weights=summed.astype(np.float32),
            times=pair_times,
            user_ids=user_ids,
            item_ids=item_ids,
            merged_rows=len(user_arr) - len(order),
        )

    @classmethod
    def from_matrix(
        cls, matrix: InteractionMatrix, times: npt.ArrayLike | None = None
    ) -> InteractionLog:
        """The pairs of a matrix (row-major order), on its axes; ``times`` aligned with its
        stored entries when given."""
        coo = matrix.matrix.tocoo()
        order = np.lexsort((coo.col, coo.row))
        time_arr = None if times is None else np.asarray(times, dtype=np.int64)[order]
        return cls(
            users=coo.row[order].astype(np.int64),
            items=coo.col[order].astype(np.int64),
            weights=coo.data[order].astype(np.float32),
            times=time_arr,
            user_ids=matrix.user_ids,
            item_ids=matrix.item_ids,
        )

    def subset(self, keep: BoolArray) -> InteractionLog:
        """The pairs where ``keep`` holds, on the same axes."""
        return replace(
            self,
            users=self.users[keep],
            items=self.items[keep],
            weights=self.weights[keep],
            times=None if self.times is None else self.times[keep],
            merged_rows=0,
        )

    def matrix(self) -> InteractionMatrix:
        """The users x items matrix of the pairs' weights (every user and item of the axes)."""
        csr = sp.csr_matrix(
            (self.weights, (self.users, self.items)),
            shape=(len(self.user_ids), len(self.item_ids)),
            dtype=np.float32,
        )
        return InteractionMatrix(csr, self.user_ids, self.item_ids)


def load_interactions(path: Path) -> InteractionLog:
    """The interactions table ``getit-ml data import interactions`` wrote (its output folder or
    the ``interactions.parquet`` itself) as a log; times in microseconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = path / INTERACTIONS_FILE if path.is_dir() else path
    if not file.is_file():
        raise UserError(
            f"no {INTERACTIONS_FILE} at {path}: pass the folder `getit-ml data import "
            "interactions FILE --out DIR` wrote"
        )
    try:
        table = pq.read_table(file)
    except (OSError, pa.ArrowInvalid) as error:
        raise UserError(f"cannot read {file}: {error}") from None
    missing = [
        c for c in ("customer_id", "product_id", "interaction_ts") if c not in table.schema.names
    ]
    if missing:
        raise UserError(f"{file} lacks the interactions contract's column(s) {', '.join(missing)}")
    if table.num_rows == 0:
        raise UserError(f"{file} holds no interactions")
    for name in ("customer_id", "product_id", "interaction_ts"):
        if table.column(name).null_count:
            raise UserError(f"{file}: column {name} has {table.column(name).null_count} null(s)")
    ts = table.column("interaction_ts")
    if pa.types.is_timestamp(ts.type):
        ts = ts.cast(pa.timestamp("us")).cast(pa.int64())
    return InteractionLog.from_rows(
        table.column("customer_id").to_numpy(),
        table.column("product_id").to_numpy(),
        times=np.asarray(ts.to_numpy(), dtype=np.int64),
    )


# ------------------------------------------------------------------------------ splits
@dataclass(frozen=True)
class SplitReport:
    """What a split did, in counts (each a number of pairs unless it says users or items)."""

    protocol: str
    train_pairs: int
    test_pairs: int
    test_users: int
    #: Users kept wholly in train (too few pairs to hold one out).
    users_train_only: int = 0
    #: Temporal: test pairs removed because their user / item has no training pair.
    cold_user_pairs: int = 0
    cold_users: int = 0
    cold_item_pairs: int = 0
    cold_items: int = 0
    #: Stratified / leave-last-out: test pairs whose item has no training pair (kept).
    unseen_item_pairs_kept: int = 0
    #: Temporal: the cut (a pair after it is in test), in the log's time unit.
    cut_time: int | None = None

    def describe(self) -> str:
        """One line for a table's caption."""
        parts = [
            f"{self.protocol}: {self.train_pairs:,} train / {self.test_pairs:,} test pairs, "
            f"{self.test_users:,} test users"
        ]
        if self.users_train_only:
            parts.append(f"{self.users_train_only:,} users with too few pairs kept in train")
        if self.cold_user_pairs or self.cold_item_pairs:
            parts.append(
                f"cold start not scored: {self.cold_user_pairs:,} pairs of {self.cold_users:,} "
                f"new users and {self.cold_item_pairs:,} of {self.cold_items:,} new items removed"
            )
        if self.unseen_item_pairs_kept:
            parts.append(
                f"{self.unseen_item_pairs_kept:,} test pairs of items unseen in train kept"
            )
        if self.cut_time is not None:
            parts.append(f"cut at {_format_time(self.cut_time)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Split:
    """A training and a test part of one log (same axes), with the report."""

    train: InteractionLog
    test: InteractionLog
    report: SplitReport


def _format_time(value: int) -> str:
    """A microsecond time as ISO 8601 (UTC), or the number when outside datetime's range."""
    try:
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value)
    except OverflowError:
        return str(value)
    return moment.isoformat(timespec="seconds")


def split(
    log: InteractionLog,
    protocol: str,
    *,
    fraction: float = DEFAULT_FRACTION,
    seed: int = DEFAULT_SEED,
    min_interactions: int = 2,
) -> Split:
    """Split ``log`` by ``protocol`` (see the module's docstring). ``fraction`` is the training
    share (stratified: of each user's pairs; temporal: of all pairs, in time order)."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if not 0.0 < fraction < 1.0:
        raise UserError(f"the training fraction must lie in (0, 1) (got {fraction})")
    if min_interactions < 2:
        raise UserError(f"min_interactions must be at least 2 (got {min_interactions})")
    if log.n_pairs == 0:
        raise UserError("there are no interactions to split")
    if protocol == "stratified":
        in_test, train_only = _stratified(log, fraction, seed, min_interactions)
        result = _finish(log, protocol, in_test, users_train_only=train_only)
    elif protocol == "leave-last-out":
        in_test, train_only = _leave_last_out(log)
        result = _finish(log, protocol, in_test, users_train_only=train_only)
    else:
        in_test, cut = _temporal(log, fraction)
        result = _finish(log, protocol, in_test, cut_time=cut, drop_cold=True)
    if result.test.n_pairs == 0:
        raise UserError(f"{protocol} split: the test part is empty ({result.report.describe()})")
    if result.train.n_pairs == 0:
        raise UserError(f"{protocol} split: the training part is empty")
    return result


def _user_counts(log: InteractionLog) -> IntArray:
    return np.bincount(log.users, minlength=len(log.user_ids)).astype(np.int64)


def _stratified(
    log: InteractionLog, fraction: float, seed: int, min_interactions: int
) -> tuple[BoolArray, int]:
    # Recommenders: np.random.seed(seed); np.random.rand(rows) in row order; sort by (user,
    # draw); rank = position within the user / the user's count; train when rank <= ratio.
    draws = np.random.RandomState(seed).rand(log.n_pairs)
    order = np.lexsort((draws, log.users))
    counts = _user_counts(log)
    sorted_users = log.users[order]
    starts = np.concatenate(([0], np.cumsum(counts)))[sorted_users]
    position = np.arange(log.n_pairs) - starts + 1
    in_test = np.empty(log.n_pairs, dtype=bool)
    in_test[order] = position / counts[sorted_users] > fraction
    few = counts[log.users] < min_interactions
    in_test &= ~few
    # A user whose share rounds to no training pair at all would be cold: keep it in train too.
    no_train = np.bincount(log.users[~in_test], minlength=len(counts)) == 0
    in_test &= ~no_train[log.users]
    train_only = int(((counts > 0) & ((counts < min_interactions) | no_train)).sum())
    return in_test, train_only


def _require_times(log: InteractionLog, protocol: str) -> IntArray:
    if log.times is None:
        raise UserError(f"the {protocol} protocol needs interaction times; this log has none")
    if log.n_pairs > 1 and np.all(log.times == log.times[0]):
        raise UserError(
            f"the {protocol} protocol needs interaction times, but every interaction has the "
            "same time (the import found no timestamp column?): use --protocol stratified"
        )
    return log.times


def _leave_last_out(log: InteractionLog) -> tuple[BoolArray, int]:
    times = _require_times(log, "leave-last-out")
    rows = np.arange(log.n_pairs)
    # Sorted by user, then time, then row: each user's last entry is its latest pair.
    order = np.lexsort((rows, times, log.users))
    last = np.ones(log.n_pairs, dtype=bool)
    last[:-1] = log.users[order][1:] != log.users[order][:-1]
    in_test = np.zeros(log.n_pairs, dtype=bool)
    in_test[order[last]] = True
    counts = _user_counts(log)
    single = counts[log.users] < 2
    in_test &= ~single
    return in_test, int((counts == 1).sum())


def _temporal(log: InteractionLog, fraction: float) -> tuple[BoolArray, int]:
    times = _require_times(log, "temporal")
    ordered = np.sort(times, kind="stable")
    cut = int(ordered[max(int(np.ceil(fraction * log.n_pairs)) - 1, 0)])
    # Pairs at the cut's very time stay in train: simultaneous events are never split.
    return times > cut, cut


def _finish(
    log: InteractionLog,
    protocol: str,
    in_test: BoolArray,
    *,
    users_train_only: int = 0,
    cut_time: int | None = None,
    drop_cold: bool = False,
) -> Split:
    train, test = log.subset(~in_test), log.subset(in_test)
    train_users = np.bincount(train.users, minlength=len(log.user_ids)) > 0
    train_items = np.bincount(train.items, minlength=len(log.item_ids)) > 0
    cold_user = ~train_users[test.users]
    cold_item = ~train_items[test.items]
    counts: dict[str, int] = {}
    if drop_cold:
        counts = {
            "cold_user_pairs": int(cold_user.sum()),
            "cold_users": len(np.unique(test.users[cold_user])),
            "cold_item_pairs": int((cold_item & ~cold_user).sum()),
            "cold_items": len(np.unique(test.items[cold_item & ~cold_user])),
        }
        test = test.subset(~(cold_user | cold_item))
    else:
        counts = {"unseen_item_pairs_kept": int(cold_item.sum())}
    report = SplitReport(
        protocol=protocol,
        train_pairs=train.n_pairs,
        test_pairs=test.n_pairs,
        test_users=len(np.unique(test.users)),
        users_train_only=users_train_only,
        cut_time=cut_time,
        **counts,
    )
    return Split(train, test, report)
