"""Days as the MP stage's command line and config write them."""
from __future__ import annotations

import datetime as dt


def parse_day(value) -> dt.date:
    """A day from ``date``, ``"2022-04-25"``, ``"20220425"`` or ``20220425``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a day; use YYYY-MM-DD (e.g. 2022-04-25) or YYYYMMDD")


def parse_days(text: str) -> list[dt.date]:
    """``"2022-04-25:2022-04-30"`` (inclusive range), ``"2022-05-01,2022-05-03"`` or a mix."""
    days: list[dt.date] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        if ":" in part:
            lo, _, hi = part.partition(":")
            a, b = parse_day(lo), parse_day(hi)
            if b < a:
                raise ValueError(f"day range {part!r} ends before it starts; write FIRST:LAST")
            days += [a + dt.timedelta(d) for d in range((b - a).days + 1)]
        else:
            days.append(parse_day(part))
    if not days:
        raise ValueError(f"{text!r} names no days; use e.g. 2022-04-25:2022-04-30")
    return sorted(set(days))


def sorted_days(days) -> list[dt.date]:
    """Distinct days, sorted, from anything :func:`parse_day` reads."""
    return sorted({parse_day(d) for d in days})


def fmt_days(days) -> str:
    """``2022-05-01..2022-05-05`` for a run of 3+ consecutive days, else a list."""
    days = sorted(days)
    if len(days) > 2 and (days[-1] - days[0]).days + 1 == len(days):
        return f"{days[0]}..{days[-1]}"
    return ", ".join(map(str, days))
