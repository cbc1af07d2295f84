"""Business-level domains of request inputs, checked before a single feature is read.

The v2 codec (:mod:`~getit_ml.serving.protocol`) makes sure a request is well-formed: an
``FP64`` input holds finite float64 numbers, a ``BYTES`` input UTF-8 strings. That says nothing
about whether the values mean anything: a checkout of -5,000 or 1e308 taka, a payment rail
called ``paypal``, a megabyte of text or a timestamp of 2^62 microseconds (the year 146,000) all
decode fine — and the trees would score them. 1e308 is worse than meaningless: XGBoost holds
features as float32, where it is infinity.

So each request input declares a :class:`FieldDomain` (in its family's request declaration, next
to its datatype: explicit and reviewable), and the transformer runs :func:`validate_request` on
the decoded columns, defaults filled in, before the online store is asked anything:

* numbers: ``finite`` (within float32, the trees' precision: on by default) and a range from
  ``gt`` / ``ge`` (open / closed lower bound) and ``lt`` / ``le`` (upper); integer ids declare
  ``ge=0``;
* text: ``min_length`` (1: non-empty) and ``max_length``, then ``categories``: the closed set of
  values the model was trained on, and what to do with any other value (``unknown``):
  ``"reject"`` (400) or ``"missing"`` (the value becomes missing, as the model saw for absent
  values in training, and the answer says how many: :attr:`RequestColumns.unknown_categories`);
* time: a :class:`TimeWindow` over epoch microseconds (the ``*_ts_us`` convention), absolute
  (``not_before``) and relative to the request's arrival (``max_ahead``: clock skew, ``max_age``).
  Such a window also catches a unit mistake — seconds or milliseconds land in January 1970,
  nanoseconds tens of thousands of years ahead — and the message says which unit it looks like.

A violation is a 400 whose one-line message names the input, the rule, the first bad row and
its value (long text truncated) and, when several rows fail, how many and which (the first few)::

    input 'amount_bdt' must be > 0 and <= 10,000,000 BDT: row 0 is -5000.0
    input 'payment_method' must be one of bkash, nagad, rocket, card, cod (unknown categories are
    rejected): row 2 is 'paypal'; 2 of 3 rows fail (rows 1, 2)

An input declared without a domain still gets its datatype's baseline (:func:`baseline_domain`):
finite numbers, text of at most :data:`DEFAULT_MAX_LENGTH` characters.

The checks are cheap because every rule admits an interval (or a set): a column passes when
its ``min`` and ``max`` do (``set.issuperset`` for categories), builtins that run in C over the
decoded list, with no array built and no message formatted. About 10 microseconds for fraud's
seven-input checkout of one row, 35 for 100 rows (one CPU core). Only a failing column is walked
again, to name its bad rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from getit_ml.errors import UserError
from getit_ml.serving.protocol import ProtocolError, bad_request

if TYPE_CHECKING:
    from getit_ml.serving.runtime import RequestInput

#: What happens to a text value outside a field's categories: a 400, or a missing value.
UnknownCategories = Literal["reject", "missing"]
UNKNOWN_POLICIES: Final = ("reject", "missing")
#: XGBoost stores features as float32: anything larger in magnitude is infinity in the trees.
FLOAT32_MAX: Final = float(np.finfo(np.float32).max)
#: Text inputs declared without a ``max_length`` take at most this many characters.
DEFAULT_MAX_LENGTH: Final = 256
#: How far ahead of the request's arrival a caller's timestamp may sensibly be: clock skew between
#: its host and ours, which NTP-synchronised machines stay well inside (``max_ahead``).
CLOCK_SKEW: Final = timedelta(minutes=5)
US_PER_S: Final = 1_000_000
#: Rows and characters an error message shows.
SHOWN_ROWS: Final = 5
SHOWN_CHARS: Final = 40
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NUMERIC: Final = frozenset({"INT64", "FP64"})


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


@dataclass(frozen=True)
class TimeWindow:
    """Which epoch-microsecond stamps a request may carry.

    ``not_before`` / ``not_after`` are absolute (timezone-aware); ``max_age`` / ``max_ahead``
    are relative to the request's arrival. A family that scores historical events (the demo
    replays 2025's payments) leaves ``max_age`` unset and bounds the past absolutely."""

    not_before: datetime | None = None
    not_after: datetime | None = None
    max_age: timedelta | None = None
    max_ahead: timedelta | None = None

    def __post_init__(self) -> None:
        for name in ("not_before", "not_after"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise UserError(f"time window: {name} must be timezone-aware (e.g. tzinfo=UTC)")
        for name in ("max_age", "max_ahead"):
            span = getattr(self, name)
            if span is not None and span < timedelta(0):
                raise UserError(f"time window: {name} must not be negative")
        if self.not_before and self.not_after and self.not_before >= self.not_after:
            raise UserError("time window: not_before must be earlier than not_after")
        if all(
            getattr(self, n) is None for n in ("not_before", "not_after", "max_age", "max_ahead")
        ):
            raise UserError("time window: give at least one bound")

    def bounds(self, now_us: int) -> tuple[int | None, int | None]:
        """The closed range ``[low, high]`` of epoch microseconds for a request arriving at
        ``now_us`` (``None``: unbounded on that side)."""
        lows = [] if self.not_before is None else [_micros(self.not_before)]
        highs = [] if self.not_after is None else [_micros(self.not_after)]
        if self.max_age is not None:
            lows.append(now_us - _span_us(self.max_age))
        if self.max_ahead is not None:
            highs.append(now_us + _span_us(self.max_ahead))
        return (max(lows) if lows else None, min(highs) if highs else None)

    def describe(self, now_us: int) -> str:
        low, high = self.bounds(now_us)
        parts = ["epoch microseconds"]
        if low is not None:
            relative = self.max_age is not None and low == now_us - _span_us(self.max_age)
            suffix = f" ({_span_text(self.max_age)} before arrival)" if relative else ""
            parts.append(f"from {_iso(low)}{suffix}")
        if high is not None:
            relative = self.max_ahead is not None and high == now_us + _span_us(self.max_ahead)
            suffix = f" ({_span_text(self.max_ahead)} after arrival)" if relative else ""
            parts.append(f"to {_iso(high)}{suffix}")
        return " ".join(parts)


@dataclass(frozen=True)
class FieldDomain:
    """The values one request input may take (see the module docstring for each rule).

    Numeric rules apply to ``INT64`` and ``FP64`` inputs, text rules to ``BYTES``, a
    ``window`` to ``INT64``; :meth:`check_datatype` refuses any other pairing when the request
    is declared, so a wrong declaration fails at import, not in production."""

    #: Numbers: lower bound, open (``gt``) or closed (``ge``); upper, open (``lt``) or closed
    #: (``le``). At most one of each pair.
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    #: Numbers: refuse magnitudes beyond float32 (infinity inside the trees).
    finite: bool = True
    #: Text: the closed set of known values, and what to do with any other one.
    categories: tuple[str, ...] | None = None
    unknown: UnknownCategories = "reject"
    #: Text: length bounds in characters (``min_length=1``: non-empty; ``max_length=None``:
    #: :data:`DEFAULT_MAX_LENGTH`).
    min_length: int = 0
    max_length: int | None = None
    #: Epoch-microsecond stamps: the window they must fall in.
    window: TimeWindow | None = None
    #: Shown after a numeric range in messages, e.g. ``BDT``.
    unit: str = ""
    _allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.gt is not None and self.ge is not None:
            raise UserError("a domain takes gt or ge, not both")
        if self.lt is not None and self.le is not None:
            raise UserError("a domain takes lt or le, not both")
        low, high = _first(self.gt, self.ge), _first(self.lt, self.le)
        for bound in (low, high):
            if bound is not None and not math.isfinite(bound):
                raise UserError(f"a domain bound must be finite (got {bound})")
        if low is not None and high is not None:
            empty = low > high or (low == high and (self.gt is not None or self.lt is not None))
            if empty:
                raise UserError(f"a domain's range {self.range_text()} holds no value")
        if self.unknown not in UNKNOWN_POLICIES:
            raise UserError(f"unknown= must be one of {UNKNOWN_POLICIES} (got {self.unknown!r})")
        if self.categories is not None:
            listed = isinstance(self.categories, tuple) and self.categories
            if not listed or not all(isinstance(c, str) for c in self.categories):
                raise UserError("categories must be a non-empty tuple of strings")
            if len(set(self.categories)) != len(self.categories):
                raise UserError(f"categories {self.categories} name a value twice")
        elif self.unknown != "reject":
            raise UserError("unknown= says what to do outside the categories: declare them")
        if self.min_length < 0 or (self.max_length is not None and self.max_length < 1):
            raise UserError("min_length must be >= 0 and max_length >= 1")
        if self.max_length is not None and self.min_length > self.max_length:
            raise UserError(f"min_length {self.min_length} exceeds max_length {self.max_length}")
        object.__setattr__(self, "_allowed", frozenset(self.categories or ()))

    @property
    def numeric(self) -> bool:
        """Whether a numeric rule other than ``finite`` is declared."""
        return any(b is not None for b in (self.gt, self.ge, self.lt, self.le, self.window))

    @property
    def ranged(self) -> bool:
        return any(b is not None for b in (self.gt, self.ge, self.lt, self.le))

    def in_range(self, value: Any) -> bool:
        """Whether ``value`` is within ``gt``/``ge``/``lt``/``le`` (False for NaN)."""
        return bool(
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.lt is None or value < self.lt)
            and (self.le is None or value <= self.le)
        )

    @property
    def textual(self) -> bool:
        return self.categories is not None or self.min_length > 0 or self.max_length is not None

    def check_datatype(self, name: str, datatype: str) -> None:
        """Refuse rules that cannot apply to ``datatype`` (at declaration time)."""
        if self.textual and datatype != "BYTES":
            raise UserError(f"request input {name}: length and categories apply to BYTES only")
        if self.window is not None and datatype != "INT64":
            raise UserError(f"request input {name}: a time window applies to INT64 stamps only")
        if self.numeric and datatype not in _NUMERIC:
            raise UserError(f"request input {name}: ranges apply to INT64 and FP64 inputs only")

    def range_text(self) -> str:
        parts = []
        if self.gt is not None:
            parts.append(f"> {_number_text(self.gt)}")
        if self.ge is not None:
            parts.append(f">= {_number_text(self.ge)}")
        if self.lt is not None:
            parts.append(f"< {_number_text(self.lt)}")
        if self.le is not None:
            parts.append(f"<= {_number_text(self.le)}")
        return " and ".join(parts) + (f" {self.unit}" if self.unit and parts else "")


def baseline_domain(datatype: str) -> FieldDomain:
    """The domain of an input declared without one: finite numbers, bounded text."""
    return _BASELINE_TEXT if datatype == "BYTES" else _BASELINE


_BASELINE: Final = FieldDomain()
_BASELINE_TEXT: Final = FieldDomain(max_length=DEFAULT_MAX_LENGTH)


class RequestColumns(dict[str, list[Any]]):
    """A request's columns once validated (a plain ``dict`` of input name -> values), and what
    validation changed in them.

    ``unknown_categories`` counts the values outside their input's categories that became
    missing (``unknown="missing"``), over all inputs and rows; the transformer reports it as the
    response's ``parameters.unknown_categories`` so the caller sees that the score was made
    without them. ``unknown_by_input`` has the same count per input (inputs with none left out).
    """

    unknown_categories: int
    unknown_by_input: dict[str, int]

    def __init__(self, columns: Mapping[str, list[Any]]) -> None:
        super().__init__(columns)
        self.unknown_by_input = {}
        self.unknown_categories = 0


def validate_request(
    columns: Mapping[str, list[Any]],
    spec: Sequence[RequestInput],
    *,
    now_us: int | None = None,
) -> RequestColumns:
    """Check every column against its input's domain (400 on the first violation) and return
    the columns, unknown categories turned into ``None`` where the input says ``missing``.

    ``now_us`` is the request's arrival (epoch microseconds; default: now), the reference of
    relative time windows. Inputs that copy another (``RequestDefault.copy_of``) are checked
    last, so a bad value is reported under the name the caller sent it as."""
    arrival = now_us if now_us is not None else _now_us()
    checked = RequestColumns(columns)
    for spec_field in sorted(spec, key=_copies_another):
        values = columns.get(spec_field.name)
        if not values:
            continue
        domain = spec_field.domain or baseline_domain(spec_field.datatype)
        if spec_field.datatype in _NUMERIC:
            _check_numbers(spec_field.name, spec_field.datatype, values, domain, arrival)
        elif spec_field.datatype == "BYTES":
            mapped, count = _check_text(spec_field.name, values, domain)
            if count:
                checked[spec_field.name] = mapped
                checked.unknown_by_input[spec_field.name] = count
                checked.unknown_categories += count
    return checked


def _copies_another(spec_field: RequestInput) -> bool:
    return spec_field.default is not None and spec_field.default.kind == "copy"


# ------------------------------------------------------------------------------------- numbers
# Every rule's set of admitted values is an interval, so a column passes when its minimum and
# maximum do: builtins ``min``/``max`` over the decoded list run in C, with no array to build.
# Only a failing column is walked again, in Python, to name its bad rows.
def _check_numbers(
    name: str, datatype: str, values: list[Any], domain: FieldDomain, now_us: int
) -> None:
    present = values if None not in values else [v for v in values if v is not None]
    if not present:
        return
    low, high = min(present), max(present)
    if datatype == "INT64" and not (_fits_int64(low) and _fits_int64(high)):
        _fail(name, "an integer that fits INT64", values, _fits_int64)
    # NaN hides from min/max but not from a sum (protocol already refuses NaN in requests).
    if (
        domain.finite
        and datatype == "FP64"
        and not (_fits_float32(low) and _fits_float32(high) and not math.isnan(sum(present)))
    ):
        _fail(name, f"a finite number within float32 (|x| <= {FLOAT32_MAX:.3g})", values,
              _fits_float32)  # fmt: skip
    if domain.ranged and not (domain.in_range(low) and domain.in_range(high)):
        _fail(name, domain.range_text(), values, domain.in_range)
    window = domain.window
    if window is not None:
        first, last = window.bounds(now_us)

        def inside(value: Any) -> bool:
            return (first is None or value >= first) and (last is None or value <= last)

        if not (inside(low) and inside(high)):
            show = partial(_stamp_text, now_us=now_us)
            _fail(name, window.describe(now_us), values, inside, show)


def _fits_int64(value: Any) -> bool:
    return bool(-(2**63) <= value < 2**63)


def _fits_float32(value: Any) -> bool:
    return bool(-FLOAT32_MAX <= value <= FLOAT32_MAX)  # False for NaN


# ---------------------------------------------------------------------------------------- text
def _check_text(name: str, values: list[Any], domain: FieldDomain) -> tuple[list[Any], int]:
    present = values if None not in values else [v for v in values if v is not None]
    if not present:
        return values, 0
    lengths = list(map(len, present))
    maximum = domain.max_length if domain.max_length is not None else DEFAULT_MAX_LENGTH
    if max(lengths) > maximum:
        _fail(name, f"at most {maximum:,} characters", values, lambda v: len(v) <= maximum)
    least = domain.min_length
    if least and min(lengths) < least:
        rule = "non-empty" if least == 1 else f"at least {least} characters"
        _fail(name, rule, values, lambda v: len(v) >= least)
    allowed = domain._allowed
    if domain.categories is None or allowed.issuperset(present):
        return values, 0
    if domain.unknown == "reject":
        rule = f"one of {', '.join(domain.categories)} (unknown categories are rejected)"
        _fail(name, rule, values, allowed.__contains__)
    mapped = [v if v is None or v in allowed else None for v in values]
    return mapped, sum(
        1 for v, m in zip(values, mapped, strict=True) if v is not None and m is None
    )


# ------------------------------------------------------------------------------------- errors
def _fail(
    name: str,
    rule: str,
    values: list[Any],
    admits: Callable[[Any], bool],
    show: Callable[[Any], str] | None = None,
) -> None:
    """400 naming the rows ``admits`` refuses (missing values pass: they are the missing mask's
    business); nothing when every row passes."""
    rows = [row for row, value in enumerate(values) if value is not None and not admits(value)]
    if rows:
        raise _violation(name, rule, values, rows, show)


def _violation(
    name: str,
    rule: str,
    values: list[Any],
    rows: list[int],
    show: Callable[[Any], str] | None = None,
) -> ProtocolError:
    first = rows[0]
    text = (show or _value_text)(values[first])
    message = f"input {name!r} must be {rule}: row {first} is {text}"
    if len(rows) > 1:
        listed = ", ".join(str(r) for r in rows[:SHOWN_ROWS])
        more = ", ..." if len(rows) > SHOWN_ROWS else ""
        message += f"; {len(rows)} of {len(values)} rows fail (rows {listed}{more})"
    return bad_request(message)


def _value_text(value: Any) -> str:
    if isinstance(value, str | bytes) and len(value) > SHOWN_CHARS:
        return f"{value[:SHOWN_CHARS]!r}... ({len(value):,} characters)"
    return repr(value)


def _stamp_text(value: Any, now_us: int) -> str:
    """A stamp with its date, and the unit it looks like when it is not microseconds (within 20
    years of the arrival once read in that unit)."""
    micros = int(value)
    text = f"{micros} ({_iso(micros)})"
    for unit, factor in (("seconds", 10**6), ("milliseconds", 10**3), ("nanoseconds", 10**-3)):
        if abs(micros * factor - now_us) < 20 * 365 * 86_400 * US_PER_S:
            return f"{text}: it looks like {unit}, the request takes microseconds"
    return text


def _number_text(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:g}"


# --------------------------------------------------------------------------------------- time
def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * US_PER_S)


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def _span_us(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * US_PER_S + span.microseconds


def _span_text(span: timedelta | None) -> str:
    seconds = int(span.total_seconds()) if span is not None else 0
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} s"


def _iso(micros: int) -> str:
    try:
        moment = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return "beyond year 9999" if micros > 0 else "before year 1"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
