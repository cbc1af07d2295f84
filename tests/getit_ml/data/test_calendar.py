"""The retail calendar: computed Hijri, Bangla and puja dates against real Bangladeshi observances,
the festival demand shapes, and the CALENDAR table."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from getit_ml.data import calendar as cal
from getit_ml.data import contracts

# Eid days as declared in Bangladesh (1 Shawwal and 10 Dhul Hijjah).
EID_UL_FITR_BANGLADESH = [date(2022, 5, 3), date(2023, 4, 22), date(2024, 4, 11), date(2025, 3, 31)]
EID_UL_ADHA_BANGLADESH = [date(2022, 7, 10), date(2023, 6, 29), date(2024, 6, 17), date(2025, 6, 7)]
# Bijoya Dashami in Bangladesh; 2020 was an adhik-maas year (the puja came a month late).
BIJOYA_DASHAMI_BANGLADESH = [
    date(2020, 10, 26),
    date(2022, 10, 5),
    date(2023, 10, 24),
    date(2024, 10, 13),
    date(2025, 10, 2),
]


def _festival_dates(year: int, name: str) -> list[date]:
    return [f.date for f in cal.festivals(year) if f.name == name]


def _days_off(computed: list[date], expected: date) -> int:
    return min(abs((d - expected).days) for d in computed)


# ---------------------------------------------------------------------------------- astronomy


def test_new_moon_matches_meeus_worked_example() -> None:
    # Meeus, Astronomical Algorithms, example 49.a: the new moon of 1977 February.
    assert cal._new_moon_jde(-283) == pytest.approx(2443192.65118, abs=1e-5)


@pytest.mark.parametrize(
    "published",
    [
        datetime(2000, 1, 6, 18, 14, tzinfo=UTC),
        datetime(2017, 8, 21, 18, 30, tzinfo=UTC),  # total solar eclipse
        datetime(2024, 4, 8, 18, 21, tzinfo=UTC),  # total solar eclipse
    ],
)
def test_new_moons_within_two_minutes_of_published_times(published: datetime) -> None:
    (found,) = cal.new_moons(published.date() - timedelta(days=3), published.date() + timedelta(3))
    assert abs((found - published).total_seconds()) < 120


def test_new_moons_of_a_year() -> None:
    moons = cal.new_moons(date(2024, 1, 1), date(2024, 12, 31))
    assert len(moons) == 13
    gaps_days = [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(moons)]
    assert all(29.2 < gap < 29.9 for gap in gaps_days)


def test_moon_and_sun_longitudes_match_meeus_worked_examples() -> None:
    # Example 47.a (1992 April 12, 0h TD) and example 25.a (1992 October 13, 0h TD).
    moon_longitude, moon_latitude = cal._moon_ecliptic_deg(2448724.5)
    assert moon_longitude == pytest.approx(133.162655, abs=0.005)
    assert moon_latitude == pytest.approx(-3.229126, abs=0.005)
    assert cal._sun_longitude_deg(2448908.5) == pytest.approx(199.90988, abs=0.001)


def test_elongation_is_zero_at_every_computed_new_moon() -> None:
    # Two independent computations (ch. 49 and ch. 25/47) agree on when the moon is new.
    for k in range(-1250, 1270, 37):
        elongation = cal._moon_sun_elongation_deg(cal._new_moon_jd_ut(k))
        assert min(elongation, 360 - elongation) < 0.05, k


# ---------------------------------------------------------------------------------- Hijri


@pytest.mark.parametrize("eid", EID_UL_FITR_BANGLADESH)
def test_eid_ul_fitr_is_1_shawwal_within_a_day(eid: date) -> None:
    assert _days_off(_festival_dates(eid.year, cal.EID_UL_FITR), eid) <= 1
    hijri_year = cal.gregorian_to_hijri(eid).year
    assert abs((cal.hijri_to_gregorian(hijri_year, cal.SHAWWAL, 1) - eid).days) <= 1


@pytest.mark.parametrize("eid", EID_UL_ADHA_BANGLADESH)
def test_eid_ul_adha_is_10_dhul_hijjah_within_a_day(eid: date) -> None:
    assert _days_off(_festival_dates(eid.year, cal.EID_UL_ADHA), eid) <= 1
    hijri_year = cal.gregorian_to_hijri(eid).year
    assert abs((cal.hijri_to_gregorian(hijri_year, cal.DHU_AL_HIJJAH, 10) - eid).days) <= 1


def test_the_eight_recent_eids_are_mostly_exact() -> None:
    exact = [
        eid
        for eids, name in (
            (EID_UL_FITR_BANGLADESH, cal.EID_UL_FITR),
            (EID_UL_ADHA_BANGLADESH, cal.EID_UL_ADHA),
        )
        for eid in eids
        if _festival_dates(eid.year, name).count(eid) == 1
    ]
    assert len(exact) >= 7


def test_ramadan_1445_began_on_12_march_2024() -> None:
    assert cal.hijri_to_gregorian(1445, cal.RAMADAN, 1) == date(2024, 3, 12)
    assert cal.gregorian_to_hijri(date(2024, 3, 12)) == (1445, 9, 1)
    assert not cal.is_ramadan(date(2024, 3, 11))
    assert cal.is_ramadan(date(2024, 3, 12))
    assert cal.is_ramadan(date(2024, 4, 10))
    assert not cal.is_ramadan(date(2024, 4, 11))  # Eid-ul-Fitr


def test_hijri_year_numbering() -> None:
    # Ashura, 10 Muharram 1446, was on 17 July 2024 in Bangladesh.
    assert abs((cal.hijri_to_gregorian(1446, 1, 10) - date(2024, 7, 17)).days) <= 1
    assert cal.gregorian_to_hijri(date(2000, 1, 6)).year == 1420


def test_every_hijri_month_has_29_or_30_days() -> None:
    first = cal.gregorian_to_hijri(date(cal.MIN_YEAR, 1, 1))
    last = cal.gregorian_to_hijri(date(cal.MAX_YEAR, 12, 31))
    lengths = {
        cal.hijri_month_length(year, month)
        for year in range(first.year + 1, last.year)
        for month in range(1, 13)
    }
    assert lengths == {29, 30}


def test_hijri_conversion_round_trips_every_day() -> None:
    day = date(cal.MIN_YEAR, 1, 1)
    previous = cal.gregorian_to_hijri(day)
    while day < date(cal.MAX_YEAR, 12, 31):
        day += timedelta(days=1)
        hijri = cal.gregorian_to_hijri(day)
        assert cal.hijri_to_gregorian(*hijri) == day
        # Consecutive days: the next day of the month, or day 1 of the next month.
        assert hijri.day == previous.day + 1 or (
            hijri.day == 1
            and (hijri.year * 12 + hijri.month) == (previous.year * 12 + previous.month) + 1
        )
        previous = hijri


def test_a_gregorian_year_can_hold_two_eids_of_a_kind() -> None:
    assert len(_festival_dates(2000, cal.EID_UL_FITR)) == 2
    assert len(_festival_dates(2033, cal.EID_UL_FITR)) == 2
    assert len(_festival_dates(2024, cal.EID_UL_FITR)) == 1


# ---------------------------------------------------------------------------------- Bangla


@pytest.mark.parametrize("year", [1950, 2019, 2023, 2024, 2025, 2100])
def test_pohela_boishakh_is_14_april(year: int) -> None:
    assert cal.bangla_date(date(year, 4, 14)) == (year - 593, 1, 1)
    assert cal.bangla_date(date(year, 4, 13)) == (year - 594, 12, 30)


@pytest.mark.parametrize("year", [2019, 2023, 2024])
def test_national_days_in_the_bangla_calendar(year: int) -> None:
    assert cal.bangla_date(date(year, 12, 16)) == (year - 593, 9, 1)  # Victory Day: 1 Poush
    assert cal.bangla_date(date(year, 2, 21)) == (year - 594, 11, 8)  # Ekushey: 8 Falgun
    assert cal.bangla_date(date(year, 3, 26)) == (year - 594, 12, 12)  # Independence: 12 Choitro


def test_falgun_has_30_days_in_a_gregorian_leap_year() -> None:
    assert cal.bangla_date(date(2024, 3, 14)) == (1430, 11, 30)
    assert cal.bangla_date(date(2024, 3, 15)) == (1430, 12, 1)
    assert cal.bangla_date(date(2023, 3, 14)) == (1429, 11, 29)
    assert cal.bangla_date(date(2023, 3, 15)) == (1429, 12, 1)


def test_bangla_dates_advance_one_day_at_a_time() -> None:
    day = date(2019, 4, 14)
    previous = cal.bangla_date(day)
    while day < date(2026, 4, 14):
        day += timedelta(days=1)
        current = cal.bangla_date(day)
        if current.day == 1:
            assert (current.year * 12 + current.month) == (previous.year * 12 + previous.month) + 1
            assert previous.day in (29, 30, 31)
        else:
            assert current[:2] == previous[:2]
            assert current.day == previous.day + 1
        previous = current


# ---------------------------------------------------------------------------------- Durga Puja


@pytest.mark.parametrize("dashami", BIJOYA_DASHAMI_BANGLADESH)
def test_bijoya_dashami_within_a_day(dashami: date) -> None:
    assert abs((cal.bijoya_dashami(dashami.year) - dashami).days) <= 1
    assert _festival_dates(dashami.year, cal.DURGA_PUJA) == [cal.bijoya_dashami(dashami.year)]


def test_mahalaya_is_the_new_moon_in_its_window() -> None:
    for year in range(2015, 2031):
        mahalaya = cal.mahalaya(year)
        assert date(year, 9, 18) <= mahalaya <= date(year, 10, 17)
        assert 8 <= (cal.bijoya_dashami(year) - mahalaya).days <= 11


# ---------------------------------------------------------------------------------- festivals


@pytest.mark.parametrize(
    ("year", "expected"),
    [(2023, date(2023, 11, 24)), (2024, date(2024, 11, 29)), (2025, date(2025, 11, 28))],
)
def test_black_friday_follows_the_fourth_thursday(year: int, expected: date) -> None:
    assert cal.black_friday(year) == expected


def test_every_festival_occurs_each_year_and_in_date_order() -> None:
    for year in (1900, 1971, 2024, 2100):
        found = cal.festivals(year)
        assert {f.name for f in found} == set(cal.FESTIVAL_NAMES)
        assert [f.date for f in found] == sorted(f.date for f in found)
        assert all(f.date.year == year for f in found)
    fixed = {f.name: f.date for f in cal.festivals(2024)}
    assert fixed[cal.POHELA_BOISHAKH] == date(2024, 4, 14)
    assert fixed[cal.VICTORY_DAY] == date(2024, 12, 16)
    assert fixed[cal.INDEPENDENCE_DAY] == date(2024, 3, 26)
    assert fixed[cal.SINGLES_DAY] == date(2024, 11, 11)


def test_ramadan_festival_lasts_the_whole_month() -> None:
    (ramadan,) = (f for f in cal.festivals(2024) if f.name == cal.RAMADAN_FESTIVAL)
    assert ramadan.date == date(2024, 3, 12)
    assert ramadan.last_day == date(2024, 4, 10)


def test_paydays_are_month_ends() -> None:
    days = [f.date for f in cal.paydays(2024)]
    assert days[1] == date(2024, 2, 29)
    assert days[-1] == date(2024, 12, 31)
    assert cal.is_payday(date(2024, 2, 29))
    assert cal.is_payday(date(2024, 3, 3))
    assert not cal.is_payday(date(2024, 3, 4))
    assert not cal.is_payday(date(2024, 2, 28))


# ---------------------------------------------------------------------------------- demand


def test_eid_shape_builds_up_peaks_before_and_drops_on_the_day() -> None:
    eid = date(2024, 4, 11)
    (festival,) = (f for f in cal.festivals(2024) if f.name == cal.EID_UL_FITR)
    build_up = [festival.multiplier_on(eid - timedelta(days=n)) for n in range(14, 4, -1)]
    assert build_up == sorted(build_up)
    assert build_up[0] > 1.0
    assert festival.multiplier_on(eid - timedelta(days=15)) == 1.0
    for days_before in (2, 3, 4):
        assert festival.multiplier_on(eid - timedelta(days=days_before)) == 2.5
    assert festival.multiplier_on(eid) < 1.0
    recovery = [festival.multiplier_on(eid + timedelta(days=n)) for n in range(2, 9)]
    assert recovery == sorted(recovery)
    assert recovery[-1] == 1.0


def test_demand_multiplier_on_ordinary_and_single_effect_days() -> None:
    assert cal.demand_multiplier(date(2024, 2, 14)) == 1.0
    assert cal.demand_multiplier(date(2024, 11, 11)) == pytest.approx(2.2)
    assert cal.demand_multiplier(date(2024, 5, 31)) == pytest.approx(1.15)  # payday alone
    assert cal.demand_multiplier(date(2024, 3, 20)) == pytest.approx(1.1)  # Ramadan alone
    assert cal.demand_multiplier(date(2024, 12, 16)) == pytest.approx(1.2)


def test_overlapping_effects_multiply() -> None:
    day = date(2024, 4, 1)  # Ramadan, the Eid-ul-Fitr build-up and a payday
    effects = cal.demand_effects(day)
    assert {f.name for f, _ in effects} == {cal.RAMADAN_FESTIVAL, cal.EID_UL_FITR, cal.PAYDAY}
    assert cal.demand_multiplier(day) == pytest.approx(math.prod(m for _, m in effects))
    assert cal.demand_multiplier(day) > 1.1 * 1.15


def test_festival_on_names_the_strongest_effect() -> None:
    assert cal.festival_on(date(2024, 4, 9)) == cal.EID_UL_FITR  # peak beats Ramadan's x1.1
    assert cal.festival_on(date(2024, 3, 20)) == cal.RAMADAN_FESTIVAL
    assert cal.festival_on(date(2024, 11, 11)) == cal.SINGLES_DAY
    assert cal.festival_on(date(2024, 5, 31)) is None  # payday is not a festival
    assert cal.festival_on(date(2024, 2, 14)) is None


def test_demand_shape_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        cal.DemandShape(peak_multiplier=0.0)
    with pytest.raises(ValueError, match="build_up_days"):
        cal.DemandShape(peak_multiplier=2.0, build_up_days=1, peak_from_days_before=3)


# ---------------------------------------------------------------------------------- table


def test_build_calendar_has_the_contract_schema_and_one_row_per_day() -> None:
    table = cal.build_calendar(date(2024, 1, 1), date(2024, 12, 31))
    assert table.schema.equals(contracts.CALENDAR.schema())
    assert table.num_rows == 366
    days = table.column("date").to_pylist()
    assert days[0] == date(2024, 1, 1)
    assert all((b - a).days == 1 for a, b in itertools.pairwise(days))
    for name in contracts.CALENDAR.column_names:
        column = contracts.CALENDAR.column(name)
        if not column.nullable:
            assert table.column(name).null_count == 0, name
        values = [v for v in table.column(name).to_pylist() if v is not None]
        if column.min_value is not None:
            assert min(values) >= column.min_value, name
        if column.max_value is not None:
            assert max(values) <= column.max_value, name


def test_build_calendar_rows_agree_with_the_functions() -> None:
    start, end = date(2024, 12, 1), date(2025, 4, 30)  # crosses a year end and an Eid
    rows = cal.build_calendar(start, end).to_pylist()
    for row in rows:
        day = row["date"]
        assert row["demand_multiplier"] == pytest.approx(cal.demand_multiplier(day))
        assert row["festival"] == cal.festival_on(day)
        assert row["is_payday"] == cal.is_payday(day)
        assert row["is_ramadan"] == cal.is_ramadan(day)
        hijri = cal.gregorian_to_hijri(day)
        assert (row["hijri_year"], row["hijri_month"], row["hijri_day"]) == hijri
        assert row["bangla_month"] == cal.bangla_date(day).month
    assert {row["festival"] for row in rows} >= {
        cal.VICTORY_DAY,
        cal.RAMADAN_FESTIVAL,
        cal.EID_UL_FITR,
        cal.POHELA_BOISHAKH,
    }
    # Independence Day 2025 fell in Ramadan, inside the Eid build-up, which outweighs it.
    assert cal.festival_on(date(2025, 3, 26)) == cal.EID_UL_FITR


def test_build_calendar_is_deterministic_and_a_slice_of_a_longer_range() -> None:
    long = cal.build_calendar(date(2023, 12, 1), date(2025, 1, 31))
    short = cal.build_calendar(date(2024, 1, 1), date(2024, 12, 31))
    assert short.equals(cal.build_calendar(date(2024, 1, 1), date(2024, 12, 31)))
    assert short.equals(long.slice(31, 366))


def test_build_calendar_of_one_day_and_of_the_range_ends() -> None:
    assert cal.build_calendar(date(2024, 4, 11), date(2024, 4, 11)).num_rows == 1
    table = cal.build_calendar(date(1900, 1, 1), date(1900, 1, 31))
    assert table.num_rows == 31
    assert cal.build_calendar(date(2100, 12, 1), date(2100, 12, 31)).num_rows == 31


def test_build_calendar_of_a_year_is_fast() -> None:
    started = time.perf_counter()
    cal.build_calendar(date(2031, 1, 1), date(2031, 12, 31))
    assert time.perf_counter() - started < 1.0


def test_build_calendar_table_is_arrow() -> None:
    table = cal.build_calendar(date(2024, 1, 1), date(2024, 1, 7))
    assert isinstance(table, pa.Table)
    assert table.column("festival").type == pa.string()


# ---------------------------------------------------------------------------------- helpers


def test_days_to_next_festival() -> None:
    assert cal.days_to_next_festival(date(2024, 4, 1), [cal.EID_UL_FITR]) == (cal.EID_UL_FITR, 10)
    assert cal.days_to_next_festival(date(2024, 11, 11)) == (cal.SINGLES_DAY, 0)
    assert cal.days_to_next_festival(date(2024, 11, 12)) == (cal.BLACK_FRIDAY, 17)
    # Across the year end: the next festival after Victory Day is Ramadan 1446.
    assert cal.days_to_next_festival(date(2024, 12, 17)) == (cal.RAMADAN_FESTIVAL, 75)
    assert cal.days_to_next_festival(date(2024, 5, 15), [cal.PAYDAY]) == (cal.PAYDAY, 16)
    name, days = cal.days_to_next_festival(date(2100, 12, 20))
    assert days >= 0
    assert name in cal.FESTIVAL_NAMES


def test_days_to_next_festival_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown festival names"):
        cal.days_to_next_festival(date(2024, 1, 1), ["Christmas"])
    with pytest.raises(ValueError, match="empty"):
        cal.days_to_next_festival(date(2024, 1, 1), [])


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 5, 31), 0),
        (date(2024, 6, 1), 1),
        (date(2024, 6, 15), 15),
        (date(2024, 3, 1), 1),
        (date(2024, 2, 28), 28),
        (date(2024, 2, 29), 0),
    ],
)
def test_days_since_payday(day: date, expected: int) -> None:
    assert cal.days_since_payday(day) == expected


# ---------------------------------------------------------------------------------- bad input


def test_end_before_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="before start"):
        cal.build_calendar(date(2024, 2, 1), date(2024, 1, 31))


@pytest.mark.parametrize(
    "call",
    [
        lambda: cal.build_calendar(date(1899, 12, 31), date(1900, 1, 5)),
        lambda: cal.build_calendar(date(2100, 12, 1), date(2101, 1, 1)),
        lambda: cal.gregorian_to_hijri(date(1899, 12, 31)),
        lambda: cal.bangla_date(date(2101, 1, 1)),
        lambda: cal.festivals(1899),
        lambda: cal.paydays(2101),
        lambda: cal.bijoya_dashami(2101),
        lambda: cal.demand_multiplier(date(1899, 6, 1)),
        lambda: cal.days_to_next_festival(date(2101, 1, 1)),
        lambda: cal.days_since_payday(date(1800, 1, 1)),
        lambda: cal.hijri_to_gregorian(1300, 1, 1),
    ],
)
def test_years_outside_1900_2100_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="outside the supported"):
        call()


def test_impossible_hijri_dates_are_rejected() -> None:
    with pytest.raises(ValueError, match="month must be 1-12"):
        cal.hijri_to_gregorian(1445, 13, 1)
    with pytest.raises(ValueError, match="does not exist"):
        cal.hijri_to_gregorian(1445, 9, 31)
