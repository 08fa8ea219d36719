"""Chart data for the pages: plain lists handed to `json_script`, drawn by static/js/charts.js (ECharts)."""

from datetime import datetime
from decimal import Decimal

from qmtjq.display import when


def _number(value: Decimal | None, places: int) -> float | None:
    return None if value is None else round(float(value), places)


def equity_chart(curve: list[tuple[datetime, Decimal]], *, title: str) -> dict:
    return {
        "title": title,
        "unit": "money",
        "series": [{"name": title, "points": [[when(at), _number(value, 2)] for at, value in curve]}],
    }


def tracking_chart(series: list[tuple[datetime, Decimal | None, Decimal]], *, account: str, strategy: str) -> dict:
    return {
        "title": strategy,
        "unit": "percent",
        "series": [
            {"name": account, "points": [[when(at), _number(a * 100 if a is not None else None, 2)] for at, a, _s in series]},
            {"name": strategy, "points": [[when(at), _number(s * 100, 2)] for at, _a, s in series]},
        ],
    }
