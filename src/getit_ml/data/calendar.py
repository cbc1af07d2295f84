"""The Bangladeshi retail calendar: Hijri and Bangla dates, festivals, paydays and their demand.

Everything here is computed from rules, not looked up in a table of Gregorian dates, so it works
for any day from 1900 to 2100 and the rules can be read, tested and changed.

Hijri calendar (as observed in Bangladesh)
    Each month starts with a new crescent. The new moon (conjunction) is computed with Jean Meeus,
    *Astronomical Algorithms* (2nd ed.), chapter 49: the mean new moon plus its periodic and
    planetary corrections, good to well under a minute. Bangladesh's moon-sighting committee
    declares a month after the crescent is seen in the country, which usually happens one evening
    later than in Saudi Arabia. The sighting rule used here: the crescent counts as seen on the
    first evening on which, at sunset in Dhaka, it is "easily visible to the naked eye" by
    B. D. Yallop's criterion (NAO Technical Note 69, 1997: q >= +0.216, category A). q weighs
    the moon's height above the sun against the crescent's width, so it captures what a plain
    moon-age rule misses: a 24-hour moon is seen in a June evening sky but a 29-hour one is not in
    September, when the ecliptic lies flat on the western horizon. The Hijri month begins at that
    sunset, so day 1 is the *next* civil day; the moon, sun and Dhaka sunset come from Meeus's
    series (chapters 25, 47) and the sunrise equation. Compared with the starts of Ramadan,
    Shawwal (Eid-ul-Fitr) and Dhul Hijjah (Eid-ul-Adha) declared by Bangladesh's National Moon
    Sighting Committee in 2010-2025 as reported in the press: all 37 exact, and no declared
    evening lies near the boundary (q <= 0.09 not seen, q >= 0.29 seen).
    Expected error elsewhere: 0 days in most months, +-1 day when the crescent is marginal (q
    within ~0.1 of the boundary), when clouds hide a crescent that was visible, or when the
    committee accepts a report from a corner of the country far from Dhaka. Months come out 29 or
    30 days long (checked for every month from 1900 to 2100).

    Hijri months are numbered from the lunation of 6 January 2000 (Meeus's k = 0), whose month
    is Shawwal 1420.

Bangla calendar (revised Bangladesh calendar, 2019 revision)
    Pohela Boishakh is 14 April. Boishakh to Ashwin, the first six months, have 31 days, Falgun
    has 29 days (30 when the Gregorian year it ends in is a leap year), the others 30; so 16
    December (Victory Day) is 1 Poush and 21 February is 8 Falgun. The Bangla year is the
    Gregorian year minus 593 from Pohela Boishakh on, minus 594 before it.

Durga Puja
    Mahalaya is the new moon (Amavasya) whose Dhaka date falls between 18 September and 17
    October inclusive. Bijoya Dashami is the first day after it whose Dhaka sunrise falls in the
    tenth tithi of the bright fortnight, i.e. while the moon is 108-120 degrees east of the sun
    (a tithi is a 12-degree step of that elongation; the day takes the tithi in force at
    sunrise). Sun and moon longitudes come from Meeus chapters 25 and 47 (the moon's series
    truncated to its 40 largest terms: about 0.01 degree, i.e. a minute of tithi time). In the
    rare case that the tenth tithi begins and ends between two sunrises, the day it begins on
    is taken. The window also handles adhik-maas years such as 2020: Mahalaya fell on 17
    September, the puja waited a lunar month for the next new moon, and that new moon (17
    October) is the one inside the window; so the function names the new moon the puja counts
    from, which in such years is not the Mahalaya of the almanac.

Festivals and demand (modelling assumptions, not measurements)
    Each :class:`Festival` has a date and a :class:`DemandShape`: shopping rises (quadratically)
    over ``build_up_days``, holds a peak plateau some days before, moves to the festival day's own
    multiplier (Eid day itself is quiet: shops and couriers close), and recovers linearly after.
    Overlapping effects (Ramadan, the Eid build-up, a payday) multiply. The multipliers in
    :data:`FESTIVAL_SHAPES` are plausible values for a Bangladeshi online marketplace:

    ================  =====================================================================
    Eid-ul-Fitr       x1.0 -> x2.5 over 14 days, peak 4-2 days before; x0.6 on the three
                      Eid days; back to normal over 4 days
    Eid-ul-Adha       x1.0 -> x1.8 over 10 days, peak 4-2 days before; x0.6 for three days
    Ramadan           x1.1 for the whole month (evening shopping)
    Pohela Boishakh   x1.5 for the 7 days before 14 April (clothes), x1.1 on the day
    Durga Puja        x1.0 -> x1.3 over 14 days before Bijoya Dashami, peak 9-5 days before
    Victory Day       x1.2 on 16 December (national-day campaigns), rising over 2 days
    Independence Day  x1.2 on 26 March, rising over 2 days
    11.11             x2.2 on 11 November, x1.3 the day before
    Black Friday      x1.6 on the day after the 4th Thursday of November, easing over 2 days
    Payday            x1.15 on the last day of each month and the first 3 days of the next
    ================  =====================================================================
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Final, NamedTuple, TypeAlias

import pyarrow as pa

from getit_ml.data import contracts

#: The calendar is defined (and tested) for these Gregorian years.
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2100

#: Dhaka, where sunset and sunrise are computed for crescent sighting and tithis.
DHAKA_LATITUDE_DEG: Final = 23.8103
DHAKA_LONGITUDE_DEG: Final = 90.4125
#: Bangladesh Standard Time is UTC+6 all year.
BANGLADESH_UTC_OFFSET: Final = timedelta(hours=6)

#: Sighting rule: the crescent counts as seen on the first evening whose Yallop q at Dhaka sunset
#: is at least this: Yallop's category A, "easily visible to the naked eye". On Bangladesh's
#: declared month starts of 2010-2025, every evening the crescent was not reported had q <= 0.09
#: and every evening it was reported had q >= 0.29.
CRESCENT_MIN_YALLOP_Q: Final = 0.216
#: The moon's mean semi-diameter in arc minutes, for the crescent's width.
_MOON_SEMIDIAMETER_ARCMIN: Final = 15.5

HIJRI_MONTHS: Final[tuple[str, ...]] = (
    "Muharram", "Safar", "Rabi al-Awwal", "Rabi al-Thani", "Jumada al-Awwal", "Jumada al-Thani",
    "Rajab", "Shaban", "Ramadan", "Shawwal", "Dhu al-Qadah", "Dhu al-Hijjah",
)  # fmt: skip
RAMADAN: Final = 9
SHAWWAL: Final = 10
DHU_AL_HIJJAH: Final = 12

BANGLA_MONTHS: Final[tuple[str, ...]] = (
    "Boishakh", "Joishtho", "Asharh", "Shrabon", "Bhadro", "Ashwin",
    "Kartik", "Ogrohayon", "Poush", "Magh", "Falgun", "Choitro",
)  # fmt: skip
FALGUN: Final = 11

EID_UL_FITR: Final = "Eid-ul-Fitr"
EID_UL_ADHA: Final = "Eid-ul-Adha"
RAMADAN_FESTIVAL: Final = "Ramadan"
POHELA_BOISHAKH: Final = "Pohela Boishakh"
DURGA_PUJA: Final = "Durga Puja"
VICTORY_DAY: Final = "Victory Day"
INDEPENDENCE_DAY: Final = "Independence Day"
SINGLES_DAY: Final = "11.11"
BLACK_FRIDAY: Final = "Black Friday"
PAYDAY: Final = "Payday"

#: Festivals in the order used to break ties (same day, same strength).
FESTIVAL_NAMES: Final[tuple[str, ...]] = (
    EID_UL_FITR, EID_UL_ADHA, RAMADAN_FESTIVAL, POHELA_BOISHAKH, DURGA_PUJA, VICTORY_DAY,
    INDEPENDENCE_DAY, SINGLES_DAY, BLACK_FRIDAY,
)  # fmt: skip


class HijriDate(NamedTuple):
    year: int
    month: int
    day: int


class BanglaDate(NamedTuple):
    year: int
    month: int
    day: int


# ----------------------------------------------------------------------------------------------
# Input checks


def _check_year(year: int, what: str = "year") -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(
            f"{what} {year} is outside the supported range {MIN_YEAR}-{MAX_YEAR} of the calendar"
        )


def _check_date(d: date) -> None:
    if not isinstance(d, date):
        raise TypeError(f"expected a datetime.date, got {type(d).__name__}")
    _check_year(d.year, f"date {d.isoformat()}: year")


def _as_date(d: date) -> date:
    """A plain date: a ``datetime`` is a ``date`` too, and would break date arithmetic."""
    return date(d.year, d.month, d.day) if isinstance(d, datetime) else d


# ----------------------------------------------------------------------------------------------
# Time scales: Julian days, Terrestrial Time, Bangladesh civil dates

#: Julian day of 0001-01-01 00:00 (proleptic Gregorian) minus its ordinal (1).
_JD_OF_ORDINAL_ZERO: Final = 1721424.5
_J2000: Final = 2451545.0


def _jd_at_midnight_utc(d: date) -> float:
    return d.toordinal() + _JD_OF_ORDINAL_ZERO


def _bangladesh_date_of(jd_ut: float) -> date:
    """The civil date in Bangladesh (UTC+6) at the instant ``jd_ut``."""
    offset_days = BANGLADESH_UTC_OFFSET.total_seconds() / 86400.0
    return date.fromordinal(math.floor(jd_ut - _JD_OF_ORDINAL_ZERO + offset_days))


def _delta_t_days(jd: float) -> float:
    """TT - UT (Espenak & Meeus polynomials, 1900-2150); off by seconds, which is plenty here."""
    y = 2000.0 + (jd - _J2000) / 365.25
    if y < 1920:
        t = y - 1900
        seconds = -2.79 + 1.494119 * t - 0.0598939 * t**2 + 0.0061966 * t**3 - 0.000197 * t**4
    elif y < 1941:
        t = y - 1920
        seconds = 21.20 + 0.84493 * t - 0.076100 * t**2 + 0.0020936 * t**3
    elif y < 1961:
        t = y - 1950
        seconds = 29.07 + 0.407 * t - t**2 / 233 + t**3 / 2547
    elif y < 1986:
        t = y - 1975
        seconds = 45.45 + 1.067 * t - t**2 / 260 - t**3 / 718
    elif y < 2005:
        t = y - 2000
        seconds = (
            63.86
            + 0.3345 * t
            - 0.060374 * t**2
            + 0.0017275 * t**3
            + 0.000651814 * t**4
            + 0.00002373599 * t**5
        )
    elif y < 2050:
        t = y - 2000
        seconds = 62.92 + 0.32217 * t + 0.005589 * t**2
    else:
        seconds = -20 + 32 * ((y - 1820) / 100) ** 2 - 0.5628 * (2150 - y)
    return seconds / 86400.0


def _sin(degrees: float) -> float:
    return math.sin(math.radians(degrees))


# ----------------------------------------------------------------------------------------------
# Astronomy: new moons (Meeus ch. 49), sun and moon longitudes (ch. 25, 47), Dhaka sun times

#: Coefficients of the new-moon periodic terms: (coefficient, power of E, multiples of M, M', F,
#: Omega). Meeus, Astronomical Algorithms, ch. 49.
_NEW_MOON_TERMS: Final[tuple[tuple[float, int, int, int, int, int], ...]] = (
    (-0.40720, 0, 0, 1, 0, 0), (0.17241, 1, 1, 0, 0, 0), (0.01608, 0, 0, 2, 0, 0),
    (0.01039, 0, 0, 0, 2, 0), (0.00739, 1, -1, 1, 0, 0), (-0.00514, 1, 1, 1, 0, 0),
    (0.00208, 2, 2, 0, 0, 0), (-0.00111, 0, 0, 1, -2, 0), (-0.00057, 0, 0, 1, 2, 0),
    (0.00056, 1, 1, 2, 0, 0), (-0.00042, 0, 0, 3, 0, 0), (0.00042, 1, 1, 0, 2, 0),
    (0.00038, 1, 1, 0, -2, 0), (-0.00024, 1, -1, 2, 0, 0), (-0.00017, 0, 0, 0, 0, 1),
    (-0.00007, 0, 2, 1, 0, 0), (0.00004, 0, 0, 2, -2, 0), (0.00004, 0, 3, 0, 0, 0),
    (0.00003, 0, 1, 1, -2, 0), (0.00003, 0, 0, 2, 2, 0), (-0.00003, 0, 1, 1, 2, 0),
    (0.00003, 0, -1, 1, 2, 0), (-0.00002, 0, -1, 1, -2, 0), (-0.00002, 0, 1, 3, 0, 0),
    (0.00002, 0, 0, 4, 0, 0),
)  # fmt: skip

#: Planetary arguments A2..A14 of the new-moon additional corrections: (constant, per lunation,
#: coefficient of the correction in days). A1 also has a T^2 term and is computed on its own.
_NEW_MOON_PLANETARY: Final[tuple[tuple[float, float, float], ...]] = (
    (251.88, 0.016321, 0.000165), (251.83, 26.651886, 0.000164),
    (349.42, 36.412478, 0.000126), (84.66, 18.206239, 0.000110), (141.74, 53.303771, 0.000062),
    (207.14, 2.453732, 0.000060), (154.84, 7.306860, 0.000056), (34.52, 27.261239, 0.000047),
    (207.19, 0.121824, 0.000042), (291.34, 1.844379, 0.000040), (161.72, 24.198154, 0.000037),
    (239.56, 25.513099, 0.000035), (331.55, 3.592518, 0.000023),
)  # fmt: skip


def _new_moon_jde(k: int) -> float:
    """Julian Ephemeris Day (TT) of the new moon of lunation ``k`` (k = 0: 2000-01-06)."""
    t = k / 1236.85
    jde = (
        2451550.09766
        + 29.530588861 * k
        + 0.00015437 * t**2
        - 0.000000150 * t**3
        + 0.00000000073 * t**4
    )
    e = 1 - 0.002516 * t - 0.0000074 * t**2
    sun_anomaly = 2.5534 + 29.10535670 * k - 0.0000014 * t**2 - 0.00000011 * t**3
    moon_anomaly = (
        201.5643 + 385.81693528 * k + 0.0107582 * t**2 + 0.00001238 * t**3 - 0.000000058 * t**4
    )
    latitude_argument = (
        160.7108 + 390.67050284 * k - 0.0016118 * t**2 - 0.00000227 * t**3 + 0.000000011 * t**4
    )
    node = 124.7746 - 1.56375588 * k + 0.0020672 * t**2 + 0.00000215 * t**3
    for coefficient, e_power, m, m_prime, f, omega in _NEW_MOON_TERMS:
        argument = m * sun_anomaly + m_prime * moon_anomaly + f * latitude_argument + omega * node
        jde += coefficient * e**e_power * _sin(argument)
    jde += 0.000325 * _sin(299.77 + 0.107408 * k - 0.009173 * t**2)
    for constant, per_lunation, coefficient in _NEW_MOON_PLANETARY:
        jde += coefficient * _sin(constant + per_lunation * k)
    return jde


def _new_moon_jd_ut(k: int) -> float:
    jde = _new_moon_jde(k)
    return jde - _delta_t_days(jde)


def _lunation_near(d: date) -> int:
    """The lunation number ``k`` whose new moon is nearest to ``d`` (Meeus's k, rounded)."""
    return round((d.toordinal() - date(2000, 1, 6).toordinal()) / 29.530588861)


def new_moons(start: date, end: date) -> list[datetime]:
    """The instants (UTC) of every new moon from ``start`` to ``end`` inclusive (Meeus ch. 49)."""
    _check_date(start)
    _check_date(end)
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    low = _jd_at_midnight_utc(start)
    high = _jd_at_midnight_utc(end) + 1.0
    instants = []
    for k in range(_lunation_near(start) - 1, _lunation_near(end) + 2):
        jd = _new_moon_jd_ut(k)
        if low <= jd < high:
            seconds = round((jd - _J2000) * 86400.0)
            instants.append(datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(seconds=seconds))
    return instants


#: Periodic terms of the moon's longitude, largest 40 of Meeus table 47.A: (multiples of D, M,
#: M', F, coefficient in 1e-6 degree). Terms with M are multiplied by E per power of M.
_MOON_LONGITUDE_TERMS: Final[tuple[tuple[int, int, int, int, int], ...]] = (
    (0, 0, 1, 0, 6288774), (2, 0, -1, 0, 1274027), (2, 0, 0, 0, 658314), (0, 0, 2, 0, 213618),
    (0, 1, 0, 0, -185116), (0, 0, 0, 2, -114332), (2, 0, -2, 0, 58793), (2, -1, -1, 0, 57066),
    (2, 0, 1, 0, 53322), (2, -1, 0, 0, 45758), (0, 1, -1, 0, -40923), (1, 0, 0, 0, -34720),
    (0, 1, 1, 0, -30383), (2, 0, 0, -2, 15327), (0, 0, 1, 2, -12528), (0, 0, 1, -2, 10980),
    (4, 0, -1, 0, 10675), (0, 0, 3, 0, 10034), (4, 0, -2, 0, 8548), (2, 1, -1, 0, -7888),
    (2, 1, 0, 0, -6766), (1, 0, -1, 0, -5163), (1, 1, 0, 0, 4987), (2, -1, 1, 0, 4036),
    (2, 0, 2, 0, 3994), (4, 0, 0, 0, 3861), (2, 0, -3, 0, 3665), (0, 1, -2, 0, -2689),
    (2, 0, -1, 2, -2602), (2, -1, -2, 0, 2390), (1, 0, 1, 0, -2348), (2, -2, 0, 0, 2236),
    (0, 1, 2, 0, -2120), (0, 2, 0, 0, -2069), (2, -2, -1, 0, 2048), (2, 0, 1, -2, -1773),
    (2, 0, 0, 2, -1595), (4, -1, -1, 0, 1215), (0, 0, 2, 2, -1110), (3, 0, -1, 0, -892),
)  # fmt: skip


#: Periodic terms of the moon's latitude, largest 20 of Meeus table 47.B (same layout).
_MOON_LATITUDE_TERMS: Final[tuple[tuple[int, int, int, int, int], ...]] = (
    (0, 0, 0, 1, 5128122), (0, 0, 1, 1, 280602), (0, 0, 1, -1, 277693), (2, 0, 0, -1, 173237),
    (2, 0, -1, 1, 55413), (2, 0, -1, -1, 46271), (2, 0, 0, 1, 32573), (0, 0, 2, 1, 17198),
    (2, 0, 1, -1, 9266), (0, 0, 2, -1, 8822), (2, -1, 0, -1, 8216), (2, 0, -2, -1, 4324),
    (2, 0, 1, 1, 4200), (2, 1, 0, -1, -3359), (2, -1, -1, 1, 2463), (2, -1, 0, 1, 2211),
    (2, -1, -1, -1, 2065), (0, 1, -1, -1, -1870), (4, 0, -1, -1, 1828), (0, 1, 0, 1, -1794),
)  # fmt: skip


def _periodic_sum(
    terms: tuple[tuple[int, int, int, int, int], ...],
    arguments: tuple[float, float, float, float],
    e: float,
) -> float:
    """Sum of Meeus ch. 47 terms; each power of the sun's anomaly M carries a factor E."""
    elongation, sun_anomaly, moon_anomaly, latitude_argument = arguments
    total = 0.0
    for d_mult, m_mult, m_prime_mult, f_mult, coefficient in terms:
        argument = (
            d_mult * elongation
            + m_mult * sun_anomaly
            + m_prime_mult * moon_anomaly
            + f_mult * latitude_argument
        )
        total += coefficient * e ** abs(m_mult) * _sin(argument)
    return total


def _moon_ecliptic_deg(jde: float) -> tuple[float, float]:
    """Geometric ecliptic (longitude, latitude) of the moon, mean equinox of date (Meeus ch. 47,
    truncated: about 0.01 degree)."""
    t = (jde - _J2000) / 36525.0
    mean_longitude = (
        218.3164477 + 481267.88123421 * t - 0.0015786 * t**2 + t**3 / 538841 - t**4 / 65194000
    )
    elongation = (
        297.8501921 + 445267.1114034 * t - 0.0018819 * t**2 + t**3 / 545868 - t**4 / 113065000
    )
    sun_anomaly = 357.5291092 + 35999.0502909 * t - 0.0001536 * t**2 + t**3 / 24490000
    moon_anomaly = (
        134.9633964 + 477198.8675055 * t + 0.0087414 * t**2 + t**3 / 69699 - t**4 / 14712000
    )
    latitude_argument = (
        93.2720950 + 483202.0175233 * t - 0.0036539 * t**2 - t**3 / 3526000 + t**4 / 863310000
    )
    e = 1 - 0.002516 * t - 0.0000074 * t**2
    arguments = (elongation, sun_anomaly, moon_anomaly, latitude_argument)
    venus = 119.75 + 131.849 * t
    # Additive terms: Venus (A1), Jupiter (A2, A3) and the flattening of the Earth.
    longitude = _periodic_sum(_MOON_LONGITUDE_TERMS, arguments, e)
    longitude += 3958 * _sin(venus)
    longitude += 1962 * _sin(mean_longitude - latitude_argument)
    longitude += 318 * _sin(53.09 + 479264.290 * t)
    latitude = _periodic_sum(_MOON_LATITUDE_TERMS, arguments, e)
    latitude += -2235 * _sin(mean_longitude) + 382 * _sin(313.45 + 481266.484 * t)
    latitude += 175 * _sin(venus - latitude_argument) + 175 * _sin(venus + latitude_argument)
    latitude += 127 * _sin(mean_longitude - moon_anomaly) - 115 * _sin(
        mean_longitude + moon_anomaly
    )
    return (mean_longitude + longitude / 1e6) % 360.0, latitude / 1e6


def _sun_longitude_deg(jde: float) -> float:
    """Geometric longitude of the sun, mean equinox of date (Meeus ch. 25, low accuracy)."""
    t = (jde - _J2000) / 36525.0
    mean_longitude = 280.46646 + 36000.76983 * t + 0.0003032 * t**2
    anomaly = 357.52911 + 35999.05029 * t - 0.0001537 * t**2
    centre = (
        (1.914602 - 0.004817 * t - 0.000014 * t**2) * _sin(anomaly)
        + (0.019993 - 0.000101 * t) * _sin(2 * anomaly)
        + 0.000289 * _sin(3 * anomaly)
    )
    return (mean_longitude + centre) % 360.0


def _moon_sun_elongation_deg(jd_ut: float) -> float:
    """How far the moon is east of the sun in longitude, 0-360 degrees (0 = new moon)."""
    jde = jd_ut + _delta_t_days(jd_ut)
    moon_longitude, _ = _moon_ecliptic_deg(jde)
    return (moon_longitude - _sun_longitude_deg(jde)) % 360.0


def _dhaka_altitude_deg(longitude: float, latitude: float, jd_ut: float) -> float:
    """Geocentric, airless altitude in Dhaka of a body at ecliptic (longitude, latitude)."""
    t = (jd_ut - _J2000) / 36525.0
    obliquity = math.radians(23.4392911 - 0.0130042 * t)
    ecl_longitude, ecl_latitude = math.radians(longitude), math.radians(latitude)
    right_ascension = math.atan2(
        math.sin(ecl_longitude) * math.cos(obliquity)
        - math.tan(ecl_latitude) * math.sin(obliquity),
        math.cos(ecl_longitude),
    )
    declination = math.asin(
        math.sin(ecl_latitude) * math.cos(obliquity)
        + math.cos(ecl_latitude) * math.sin(obliquity) * math.sin(ecl_longitude)
    )
    mean_sidereal_time = 280.46061837 + 360.98564736629 * (jd_ut - _J2000)  # Meeus (12.4)
    hour_angle = math.radians(mean_sidereal_time + DHAKA_LONGITUDE_DEG) - right_ascension
    latitude_rad = math.radians(DHAKA_LATITUDE_DEG)
    sin_altitude = math.sin(latitude_rad) * math.sin(declination) + math.cos(
        latitude_rad
    ) * math.cos(declination) * math.cos(hour_angle)
    return math.degrees(math.asin(sin_altitude))


def _yallop_q(evening: date) -> float:
    """Yallop's crescent-visibility parameter q at Dhaka sunset on ``evening`` (NAO Technical
    Note 69, 1997): the moon's height above the sun (ARCV) against what a crescent of that width
    needs. Simplified: evaluated at sunset rather than Yallop's "best time" a few minutes later,
    with geocentric elongation and the mean semi-diameter for the width."""
    jd_ut = _dhaka_sun_jd(evening, setting=True)
    jde = jd_ut + _delta_t_days(jd_ut)
    moon_longitude, moon_latitude = _moon_ecliptic_deg(jde)
    sun_longitude = _sun_longitude_deg(jde)
    arc_of_vision = _dhaka_altitude_deg(moon_longitude, moon_latitude, jd_ut) - _dhaka_altitude_deg(
        sun_longitude, 0.0, jd_ut
    )
    cos_arc_of_light = math.cos(math.radians(moon_latitude)) * math.cos(
        math.radians(moon_longitude - sun_longitude)
    )
    width = _MOON_SEMIDIAMETER_ARCMIN * (1.0 - cos_arc_of_light)
    needed = 11.8371 - 6.3226 * width + 0.7319 * width**2 - 0.1018 * width**3
    return (arc_of_vision - needed) / 10.0


def _dhaka_sun_jd(d: date, *, setting: bool) -> float:
    """Julian day (UT) of sunset (or sunrise) in Dhaka on civil date ``d``: the sunrise equation
    with refraction and the sun's radius (-0.833 degree), accurate to a minute or two."""
    days_since_j2000 = d.toordinal() - date(2000, 1, 1).toordinal()
    mean_noon = days_since_j2000 - DHAKA_LONGITUDE_DEG / 360.0
    anomaly = (357.5291 + 0.98560028 * mean_noon) % 360.0
    centre = 1.9148 * _sin(anomaly) + 0.0200 * _sin(2 * anomaly) + 0.0003 * _sin(3 * anomaly)
    ecliptic_longitude = (anomaly + centre + 180.0 + 102.9372) % 360.0
    transit = _J2000 + mean_noon + 0.0053 * _sin(anomaly) - 0.0069 * _sin(2 * ecliptic_longitude)
    sin_declination = _sin(ecliptic_longitude) * _sin(23.4397)
    cos_declination = math.sqrt(1.0 - sin_declination**2)
    cos_hour_angle = (_sin(-0.833) - _sin(DHAKA_LATITUDE_DEG) * sin_declination) / (
        math.cos(math.radians(DHAKA_LATITUDE_DEG)) * cos_declination
    )
    half_day = math.degrees(math.acos(cos_hour_angle)) / 360.0
    return transit + half_day if setting else transit - half_day


# ----------------------------------------------------------------------------------------------
# Hijri calendar

#: Hijri month index (12 * year + month - 1) of the lunation k = 0 (6 January 2000): Shawwal 1420.
_HIJRI_INDEX_OF_LUNATION_ZERO: Final = 12 * 1420 + (SHAWWAL - 1)


def _hijri_month_start(k: int) -> date:
    """Day 1 of the Hijri month of lunation ``k``: the day after the first evening the crescent
    counts as seen in Bangladesh."""
    conjunction = _new_moon_jd_ut(k)
    evening = _bangladesh_date_of(conjunction)
    while (
        _dhaka_sun_jd(evening, setting=True) <= conjunction
        or _yallop_q(evening) < CRESCENT_MIN_YALLOP_Q
    ):
        evening += timedelta(days=1)
    return evening + timedelta(days=1)


@cache
def _hijri_month_table() -> tuple[int, tuple[int, ...]]:
    """(Hijri month index of the first entry, ordinal of day 1 of each month), covering the
    supported years with two years' margin either side: festival windows cross year ends, and
    finding a year's festivals looks at the Hijri year after the one it starts in."""
    first_k = _lunation_near(date(MIN_YEAR - 2, 1, 1)) - 1
    last_k = _lunation_near(date(MAX_YEAR + 2, 12, 31)) + 1
    starts = tuple(_hijri_month_start(k).toordinal() for k in range(first_k, last_k + 1))
    return _HIJRI_INDEX_OF_LUNATION_ZERO + first_k, starts


def _hijri_of_ordinal(ordinal: int) -> HijriDate:
    first_index, starts = _hijri_month_table()
    position = bisect.bisect_right(starts, ordinal) - 1
    if position < 0 or position >= len(starts) - 1:
        raise ValueError(f"date {date.fromordinal(ordinal)} is outside the Hijri month table")
    index = first_index + position
    return HijriDate(index // 12, index % 12 + 1, ordinal - starts[position] + 1)


def gregorian_to_hijri(d: date) -> HijriDate:
    """The Hijri date (year, month, day) of the civil day ``d`` as observed in Bangladesh.

    The Hijri day begins at the previous sunset; this gives the date that holds for the
    daylight hours of ``d``.
    """
    _check_date(d)
    return _hijri_of_ordinal(d.toordinal())


def _hijri_month_position(year: int, month: int) -> int:
    if not 1 <= month <= 12:
        raise ValueError(f"Hijri month must be 1-12, got {month}")
    first_index, starts = _hijri_month_table()
    position = 12 * year + month - 1 - first_index
    if not 0 <= position < len(starts) - 1:
        raise ValueError(_outside_supported_years(year, month))
    return position


def _outside_supported_years(year: int, month: int) -> str:
    return (
        f"Hijri month {year}-{month:02d} falls outside the supported Gregorian years "
        f"{MIN_YEAR}-{MAX_YEAR}"
    )


def _hijri_month_bounds(year: int, month: int) -> tuple[int, int]:
    """Ordinals of day 1 of Hijri ``year-month`` and of the next month (no year-range check)."""
    _, starts = _hijri_month_table()
    position = _hijri_month_position(year, month)
    return starts[position], starts[position + 1]


def hijri_month_length(year: int, month: int) -> int:
    """Days (29 or 30) in Hijri month ``month`` of ``year``, as observed in Bangladesh."""
    first, after = _hijri_month_bounds(year, month)
    if date.fromordinal(after - 1).year < MIN_YEAR or date.fromordinal(first).year > MAX_YEAR:
        raise ValueError(_outside_supported_years(year, month))
    return after - first


def _hijri_to_ordinal(year: int, month: int, day: int) -> int:
    first, after = _hijri_month_bounds(year, month)
    if not 1 <= day <= after - first:
        raise ValueError(
            f"Hijri {year}-{month:02d} has {after - first} days; day {day} does not exist"
        )
    return first + day - 1


def hijri_to_gregorian(year: int, month: int, day: int) -> date:
    """The Gregorian date of Hijri ``year-month-day`` as observed in Bangladesh."""
    result = date.fromordinal(_hijri_to_ordinal(year, month, day))
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        raise ValueError(
            f"Hijri {year}-{month:02d}-{day:02d} is {result.isoformat()}, outside the supported "
            f"Gregorian years {MIN_YEAR}-{MAX_YEAR}"
        )
    return result


def is_ramadan(d: date) -> bool:
    """Whether ``d`` is a day of the month of Ramadan (as observed in Bangladesh)."""
    return gregorian_to_hijri(d).month == RAMADAN


# ----------------------------------------------------------------------------------------------
# Bangla calendar (2019 revision)

_BANGLA_MONTH_DAYS: Final[tuple[int, ...]] = (31, 31, 31, 31, 31, 31, 30, 30, 30, 30, 29, 30)
_POHELA_BOISHAKH_MONTH_DAY: Final = (4, 14)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def bangla_date(d: date) -> BanglaDate:
    """The date (year, month, day) in the revised Bangla calendar; month 1 is Boishakh."""
    _check_date(d)
    d = _as_date(d)
    new_year = date(d.year, *_POHELA_BOISHAKH_MONTH_DAY)
    if d < new_year:
        new_year = date(d.year - 1, *_POHELA_BOISHAKH_MONTH_DAY)
    day_of_year = (d - new_year).days
    # Falgun falls in February-March of the Gregorian year after Pohela Boishakh.
    falgun_leap_day = 1 if _is_leap(new_year.year + 1) else 0
    for month, days in enumerate(_BANGLA_MONTH_DAYS, start=1):
        days_in_month = days + (falgun_leap_day if month == FALGUN else 0)
        if day_of_year < days_in_month:
            return BanglaDate(new_year.year - 593, month, day_of_year + 1)
        day_of_year -= days_in_month
    raise AssertionError("a Bangla year has as many days as the Gregorian year it starts in")


# ----------------------------------------------------------------------------------------------
# Durga Puja and other movable dates

_MAHALAYA_WINDOW: Final = ((9, 18), (10, 17))
#: The tenth tithi of the bright fortnight: the moon 108-120 degrees east of the sun.
_DASHAMI_ELONGATION_DEG: Final = (108.0, 120.0)


def mahalaya(year: int) -> date:
    """Mahalaya: the new moon whose Dhaka date is between 18 September and 17 October (in an
    adhik-maas year, the new moon the puja counts from; see the module docstring)."""
    _check_year(year)
    return _mahalaya(year)


def _mahalaya(year: int) -> date:
    first, last = (date(year, month, day) for month, day in _MAHALAYA_WINDOW)
    k = _lunation_near(first) - 1
    while True:
        new_moon_day = _bangladesh_date_of(_new_moon_jd_ut(k))
        if first <= new_moon_day <= last:
            return new_moon_day
        if new_moon_day > last:  # pragma: no cover - a 30-day window always holds a new moon
            raise AssertionError(f"no new moon between {first} and {last}")
        k += 1


def bijoya_dashami(year: int) -> date:
    """Bijoya Dashami, the last day of Durga Puja: the first day after Mahalaya whose Dhaka
    sunrise falls in the tenth tithi (see the module docstring)."""
    _check_year(year)
    return _bijoya_dashami(year)


def _bijoya_dashami(year: int) -> date:
    low, high = _DASHAMI_ELONGATION_DEG
    day = _mahalaya(year) + timedelta(days=7)
    previous_elongation = _moon_sun_elongation_deg(_dhaka_sun_jd(day, setting=False))
    while True:
        day += timedelta(days=1)
        elongation = _moon_sun_elongation_deg(_dhaka_sun_jd(day, setting=False))
        if elongation >= low:
            # The tithi began and ended between two sunrises: keep the day it began on.
            return day - timedelta(days=1) if elongation >= high else day
        if elongation < previous_elongation:  # pragma: no cover - wrapped past a new moon
            raise AssertionError(f"no tenth tithi found after Mahalaya {year}")
        previous_elongation = elongation


def black_friday(year: int) -> date:
    """The day after the fourth Thursday of November."""
    _check_year(year)
    return _black_friday(year)


def _black_friday(year: int) -> date:
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(days=21 + 1)


def _last_day_of_month(year: int, month: int) -> date:
    next_month = date(year + month // 12, month % 12 + 1, 1)
    return next_month - timedelta(days=1)


# ----------------------------------------------------------------------------------------------
# Festivals and their effect on demand


@dataclass(frozen=True)
class DemandShape:
    """How one festival moves demand around its date, as multipliers of an ordinary day.

    Before the date, demand rises quadratically for ``build_up_days - peak_from_days_before``
    days, holds ``peak_multiplier`` from ``peak_from_days_before`` to ``peak_to_days_before``
    days before, then moves linearly to ``day_multiplier``, which holds for the
    ``duration_days`` festival days; afterwards it returns linearly to 1 over
    ``recovery_days``.
    """

    peak_multiplier: float
    build_up_days: int = 0
    peak_from_days_before: int = 0
    peak_to_days_before: int = 0
    #: Multiplier on the festival days themselves; ``None`` means the peak.
    day_multiplier: float | None = None
    duration_days: int = 1
    recovery_days: int = 0

    def __post_init__(self) -> None:
        if self.peak_multiplier <= 0 or (
            self.day_multiplier is not None and self.day_multiplier <= 0
        ):
            raise ValueError("demand multipliers must be positive")
        if not self.build_up_days >= self.peak_from_days_before >= self.peak_to_days_before >= 0:
            raise ValueError(
                "need build_up_days >= peak_from_days_before >= peak_to_days_before >= 0"
            )
        if self.duration_days < 1 or self.recovery_days < 0:
            raise ValueError("duration_days must be >= 1 and recovery_days >= 0")

    @property
    def festival_day_multiplier(self) -> float:
        return self.peak_multiplier if self.day_multiplier is None else self.day_multiplier

    @property
    def last_offset(self) -> int:
        """Days from the festival date to the last day it affects."""
        return self.duration_days + self.recovery_days - 1

    def multiplier_at(self, offset: int) -> float:
        """The multiplier ``offset`` days after the festival date (negative: before it)."""
        peak = self.peak_multiplier
        on_the_day = self.festival_day_multiplier
        if offset < -self.build_up_days or offset > self.last_offset:
            return 1.0
        if offset < -self.peak_from_days_before:
            ramp_days = self.build_up_days - self.peak_from_days_before
            progress = (offset + self.build_up_days + 1) / (ramp_days + 1)
            # Quadratic: a slow start two weeks out, most of the rise in the last days.
            return 1.0 + (peak - 1.0) * progress**2
        if offset <= -self.peak_to_days_before and offset < 0:
            return peak
        if offset < 0:
            progress = (offset + self.peak_to_days_before) / self.peak_to_days_before
            return peak + (on_the_day - peak) * progress
        if offset < self.duration_days:
            return on_the_day
        progress = (offset - self.duration_days + 1) / (self.recovery_days + 1)
        return on_the_day + (1.0 - on_the_day) * progress


#: Modelling assumptions (see the module docstring); not measured from GetIt's sales.
FESTIVAL_SHAPES: Final[Mapping[str, DemandShape]] = MappingProxyType(
    {
        EID_UL_FITR: DemandShape(
            peak_multiplier=2.5,
            build_up_days=14,
            peak_from_days_before=4,
            peak_to_days_before=2,
            day_multiplier=0.6,
            duration_days=3,
            recovery_days=4,
        ),
        EID_UL_ADHA: DemandShape(
            peak_multiplier=1.8,
            build_up_days=10,
            peak_from_days_before=4,
            peak_to_days_before=2,
            day_multiplier=0.6,
            duration_days=3,
            recovery_days=3,
        ),
        # duration_days is replaced by the length of each year's Ramadan.
        RAMADAN_FESTIVAL: DemandShape(peak_multiplier=1.1, duration_days=30),
        POHELA_BOISHAKH: DemandShape(
            peak_multiplier=1.5,
            build_up_days=7,
            peak_from_days_before=7,
            peak_to_days_before=1,
            day_multiplier=1.1,
        ),
        DURGA_PUJA: DemandShape(
            peak_multiplier=1.3,
            build_up_days=14,
            peak_from_days_before=9,
            peak_to_days_before=5,
            day_multiplier=0.9,
            recovery_days=1,
        ),
        VICTORY_DAY: DemandShape(peak_multiplier=1.2, build_up_days=2),
        INDEPENDENCE_DAY: DemandShape(peak_multiplier=1.2, build_up_days=2),
        SINGLES_DAY: DemandShape(peak_multiplier=2.2, build_up_days=1),
        BLACK_FRIDAY: DemandShape(peak_multiplier=1.6, build_up_days=1, recovery_days=2),
        # The last day of the month, then the first three days of the next.
        PAYDAY: DemandShape(peak_multiplier=1.15, duration_days=4),
    }
)


#: ``Festival`` has a field named ``date``, which hides the type inside the class body.
_Date: TypeAlias = date


@dataclass(frozen=True)
class Festival:
    """One occurrence of a festival (or payday) and the shape of its demand effect."""

    name: str
    date: _Date
    shape: DemandShape

    @property
    def build_up_days(self) -> int:
        return self.shape.build_up_days

    @property
    def peak_multiplier(self) -> float:
        return self.shape.peak_multiplier

    @property
    def first_day(self) -> _Date:
        """First day of the festival's window (the start of the build-up)."""
        return self.date - timedelta(days=self.shape.build_up_days)

    @property
    def last_day(self) -> _Date:
        """Last day of the festival's window (the end of the recovery)."""
        return self.date + timedelta(days=self.shape.last_offset)

    def covers(self, d: _Date) -> bool:
        return self.first_day <= d <= self.last_day

    def multiplier_on(self, d: _Date) -> float:
        """This festival's demand multiplier on ``d`` (1 outside its window)."""
        return self.shape.multiplier_at((d - self.date).days)


def _festival(name: str, on: date, **shape_changes: int) -> Festival:
    shape = FESTIVAL_SHAPES[name]
    if shape_changes:
        shape = dataclasses.replace(shape, **shape_changes)
    return Festival(name, on, shape)


def _hijri_festival_dates(year: int, month: int, day: int) -> list[date]:
    """Gregorian dates in ``year`` of Hijri ``month-day`` (a Gregorian year holds one or two)."""
    first_hijri_year = _hijri_of_ordinal(date(year, 1, 1).toordinal()).year
    found = []
    for hijri_year in (first_hijri_year, first_hijri_year + 1):
        on = date.fromordinal(_hijri_to_ordinal(hijri_year, month, day))
        if on.year == year:
            found.append(on)
    return found


@cache
def _festivals_of_year(year: int) -> tuple[Festival, ...]:
    found = [_festival(EID_UL_FITR, on) for on in _hijri_festival_dates(year, SHAWWAL, 1)]
    found += [_festival(EID_UL_ADHA, on) for on in _hijri_festival_dates(year, DHU_AL_HIJJAH, 10)]
    for on in _hijri_festival_dates(year, RAMADAN, 1):
        first, after = _hijri_month_bounds(_hijri_of_ordinal(on.toordinal()).year, RAMADAN)
        length = after - first
        found.append(_festival(RAMADAN_FESTIVAL, on, duration_days=length))
    found += [
        _festival(POHELA_BOISHAKH, date(year, *_POHELA_BOISHAKH_MONTH_DAY)),
        _festival(DURGA_PUJA, _bijoya_dashami(year)),
        _festival(VICTORY_DAY, date(year, 12, 16)),
        _festival(INDEPENDENCE_DAY, date(year, 3, 26)),
        _festival(SINGLES_DAY, date(year, 11, 11)),
        _festival(BLACK_FRIDAY, _black_friday(year)),
    ]
    return tuple(sorted(found, key=lambda f: (f.date, FESTIVAL_NAMES.index(f.name))))


def festivals(year: int) -> tuple[Festival, ...]:
    """The festivals dated in Gregorian ``year`` (paydays excluded), in date order.

    Ramadan is dated by its first day. A Gregorian year can hold two Eids of a kind (2000, 2033).
    """
    _check_year(year)
    return _festivals_of_year(year)


@cache
def _paydays_of_year(year: int) -> tuple[Festival, ...]:
    return tuple(_festival(PAYDAY, _last_day_of_month(year, month)) for month in range(1, 13))


def paydays(year: int) -> tuple[Festival, ...]:
    """The twelve paydays of ``year``: each dated on the last day of a month."""
    _check_year(year)
    return _paydays_of_year(year)


def is_payday(d: date) -> bool:
    """The last day of a month or one of the first three days of the next (salaries arrive)."""
    _check_date(d)
    d = _as_date(d)
    return d.day <= 3 or d.day == _last_day_of_month(d.year, d.month).day


def days_since_payday(d: date) -> int:
    """Days since the most recent salary day (the last day of a month): 0 on it, 1 on the 1st."""
    _check_date(d)
    d = _as_date(d)
    last_of_this_month = _last_day_of_month(d.year, d.month)
    if d == last_of_this_month:
        return 0
    return d.day


def _effects_around(first: date, last: date) -> list[Festival]:
    """Every festival and payday whose window can reach into ``first``..``last``."""
    candidates: list[Festival] = []
    # Windows reach at most a few weeks across a year boundary, so the neighbouring years do.
    for year in range(first.year - 1, last.year + 2):
        candidates += _festivals_of_year(year)
        candidates += _paydays_of_year(year)
    return [f for f in candidates if f.last_day >= first and f.first_day <= last]


def demand_effects(d: date) -> list[tuple[Festival, float]]:
    """Every festival or payday whose window covers ``d``, with its multiplier on ``d``."""
    _check_date(d)
    d = _as_date(d)
    return [(f, f.multiplier_on(d)) for f in _effects_around(d, d) if f.covers(d)]


def demand_multiplier(d: date) -> float:
    """Ground-truth demand on ``d`` relative to an ordinary day: all effects multiplied."""
    return math.prod(multiplier for _, multiplier in demand_effects(d))


def _strength(multiplier: float) -> float:
    """How strong an effect is, up or down alike (x2 and x0.5 are equally strong)."""
    return abs(math.log(multiplier))


def festival_on(d: date) -> str | None:
    """The festival (payday excluded) whose window covers ``d`` with the strongest effect."""
    best: tuple[float, int] | None = None
    name: str | None = None
    for festival, multiplier in demand_effects(d):
        if festival.name == PAYDAY:
            continue
        # Strongest first; ties go to the earlier name in FESTIVAL_NAMES.
        key = (-_strength(multiplier), FESTIVAL_NAMES.index(festival.name))
        if best is None or key < best:
            best, name = key, festival.name
    return name


def build_calendar(start: date, end: date) -> pa.Table:
    """One row per day from ``start`` to ``end`` inclusive, in the schema of
    :data:`getit_ml.data.contracts.CALENDAR`."""
    _check_date(start)
    _check_date(end)
    start, end = _as_date(start), _as_date(end)
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    n_days = (end - start).days + 1
    days = [start + timedelta(days=i) for i in range(n_days)]

    multipliers = [1.0] * n_days
    best_name: list[str | None] = [None] * n_days
    best_key: list[tuple[float, int] | None] = [None] * n_days
    payday_flags = [False] * n_days
    for festival in _effects_around(start, end):
        first = max(festival.first_day, start)
        last = min(festival.last_day, end)
        for offset in range((first - start).days, (last - start).days + 1):
            multiplier = festival.multiplier_on(days[offset])
            multipliers[offset] *= multiplier
            if festival.name == PAYDAY:
                payday_flags[offset] = True
                continue
            key = (-_strength(multiplier), FESTIVAL_NAMES.index(festival.name))
            current = best_key[offset]
            if current is None or key < current:
                best_key[offset], best_name[offset] = key, festival.name

    hijri = [_hijri_of_ordinal(day.toordinal()) for day in days]
    columns = {
        "date": days,
        "festival": best_name,
        "is_ramadan": [h.month == RAMADAN for h in hijri],
        "hijri_year": [h.year for h in hijri],
        "hijri_month": [h.month for h in hijri],
        "hijri_day": [h.day for h in hijri],
        "bangla_month": [bangla_date(day).month for day in days],
        "is_payday": payday_flags,
        "demand_multiplier": multipliers,
    }
    return pa.Table.from_pydict(columns, schema=contracts.CALENDAR.schema())


def days_to_next_festival(d: date, names: Iterable[str] | None = None) -> tuple[str, int]:
    """The next festival on or after ``d`` (0 days if today) and how many days away it is.

    ``names`` restricts the search (e.g. ``["Eid-ul-Fitr", "Eid-ul-Adha"]``); ``"Payday"`` may
    be among them. Ties on one day go to the earlier name in :data:`FESTIVAL_NAMES`.
    """
    _check_date(d)
    d = _as_date(d)
    wanted = set(FESTIVAL_NAMES) if names is None else set(names)
    unknown = wanted - {*FESTIVAL_NAMES, PAYDAY}
    if unknown:
        raise ValueError(
            f"unknown festival names {sorted(unknown)}; known: {[*FESTIVAL_NAMES, PAYDAY]}"
        )
    if not wanted:
        raise ValueError("names is empty: there is no festival to look for")
    # Every festival happens at least once in any Gregorian year (a Hijri year is shorter).
    for year in (d.year, d.year + 1):
        upcoming = [
            f
            for f in (*_festivals_of_year(year), *_paydays_of_year(year))
            if f.name in wanted and f.date >= d
        ]
        if upcoming:
            ranked = [*FESTIVAL_NAMES, PAYDAY]
            nearest = min(upcoming, key=lambda f: (f.date, ranked.index(f.name)))
            return nearest.name, (nearest.date - d).days
    raise AssertionError(f"no festival in {sorted(wanted)} after {d}")  # pragma: no cover
