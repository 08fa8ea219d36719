"""A day's ranked bond list: validated uploads (API, CSV) and Factor Cat's list."""

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction

from positions.codes import CodeError, normalize

from ..models import RotationStrategy, Selection, SelectionItem
from .rotations import RotationError

MAX_SELECTION = 500


@dataclass(frozen=True)
class SelectedBond:
    code: str
    name: str = ""
    rank: int | None = None
    price: Decimal | None = None


def selection_validate(bonds: object) -> list[SelectedBond]:
    """Validate a posted or uploaded list; raises ValueError naming the bad line."""
    if not isinstance(bonds, list):
        raise ValueError("bonds: must be a list")
    if len(bonds) > MAX_SELECTION:
        raise ValueError(f"bonds: at most {MAX_SELECTION} lines")
    result, seen = [], set()
    for index, item in enumerate(bonds):
        field = f"bonds[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{field}: must be an object with code")
        try:
            code = normalize(item.get("code"))
        except CodeError as exc:
            raise ValueError(f"{field}.code: {exc}")
        if code in seen:
            raise ValueError(f"{field}.code: {code} appears twice")
        seen.add(code)
        name = item.get("name") or ""
        if not isinstance(name, str) or len(name) > 64:
            raise ValueError(f"{field}.name: must be a string of at most 64 characters")
        rank = item.get("rank")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise ValueError(f"{field}.rank: must be a positive whole number")
        result.append(SelectedBond(code, name.strip(), rank))
    ranks = [b.rank for b in result if b.rank is not None]
    if len(ranks) != len(set(ranks)):
        raise ValueError("bonds: two lines have the same rank")
    return result


def selection_parse_csv(data: bytes) -> list[dict]:
    """CSV with a `code` column (and optional `name`, `rank`), UTF-8 (with or without BOM) or GBK."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError("the file is neither UTF-8 nor GBK text")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "code" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ValueError("the CSV needs a header row with a 'code' column (and optionally 'name', 'rank')")
    bonds = []
    for line_no, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not row.get("code"):
            continue
        rank = row.get("rank")
        if rank:
            if not rank.isdigit():
                raise ValueError(f"line {line_no}: rank {rank!r} is not a whole number")
            rank = int(rank)
        bonds.append({"code": row["code"], "name": row.get("name", ""), "rank": rank or None})
    return bonds


@transaction.atomic
def selection_store(
    *,
    rotation: RotationStrategy,
    trade_date: date,
    bonds: list[SelectedBond],
    source: str,
    received_from: str = "",
) -> Selection:
    selection = Selection.objects.create(
        rotation=rotation, trade_date=trade_date, source=source, received_from=received_from[:200]
    )
    # Explicit ranks first, in their order; unranked lines follow in list order.
    ordered = sorted(enumerate(bonds), key=lambda item: (item[1].rank is None, item[1].rank or 0, item[0]))
    SelectionItem.objects.bulk_create(
        SelectionItem(selection=selection, rank=rank, code=bond.code, name=bond.name, price=bond.price)
        for rank, (_, bond) in enumerate(ordered, start=1)
    )
    return selection


def selection_fetch_factorcat(*, rotation: RotationStrategy, today: date) -> Selection:
    from ..credentials import with_relogin

    account = rotation.factorcat_account
    bonds = with_relogin(account, lambda client: client.today_selection(rotation.factorcat_history_id))
    if not bonds:
        raise RotationError("Factor Cat returned an empty selection for today; nothing changed")
    dates = {b.trade_date for b in bonds if b.trade_date}
    if dates and today not in dates:
        raise RotationError(f"Factor Cat's selection is for {sorted(dates)}, not {today}; nothing changed")
    return selection_store(
        rotation=rotation,
        trade_date=today,
        bonds=[SelectedBond(b.code, b.name, b.rank, b.price) for b in bonds],
        source=Selection.Source.FACTORCAT,
        received_from=account.base_url,
    )


def selection_for(*, rotation: RotationStrategy, trade_date: date, fetch: bool = True) -> Selection:
    """Today's list: fetched from Factor Cat, or the latest uploaded for that date. Never an older one."""
    if rotation.source == RotationStrategy.Source.FACTORCAT and fetch:
        return selection_fetch_factorcat(rotation=rotation, today=trade_date)
    selection = (
        Selection.objects.filter(rotation=rotation, trade_date=trade_date)
        .order_by("-created_at", "-id")
        .first()
    )
    if selection is None:
        raise RotationError(f"no selection for {trade_date}: upload one (CSV or API) first; nothing changed")
    return selection
