"""A day's ranked bond list: validated uploads (API, CSV) and Factor Cat's list."""

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction

from positions.codes import CodeError, normalize
from qmtjq.names import SOURCE_SELECTION, security_names_upsert
from qmtjq.validation import text_check

from .. import decisions
from ..factorcat import trade_date_parse
from ..models import RotationStrategy, Selection, SelectionItem
from .rotations import RotationError

MAX_SELECTION = 500
BOND_NAME_MAX = 64


@dataclass(frozen=True)
class SelectedBond:
    code: str
    name: str = ""
    rank: int | None = None
    price: Decimal | None = None


def selection_validate(bonds: object, *, trade_date: date | None = None) -> list[SelectedBond]:
    """Validate a posted or uploaded list; raises ValueError naming the bad line.

    A line may carry its own `trade_date`; it must then be the list's (`trade_date`).
    """
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
        if not isinstance(name, str) or len(name) > BOND_NAME_MAX:
            raise ValueError(f"{field}.name: must be a string of at most {BOND_NAME_MAX} characters")
        # The rules of every security name: no lone surrogates, control or invisible formatting characters.
        text_check(name.strip(), f"{field}.name", name=True)
        rank = item.get("rank")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise ValueError(f"{field}.rank: must be a positive whole number")
        line_date = item.get("trade_date")
        if line_date not in (None, "") and (trade_date is None or trade_date_parse(line_date) != trade_date):
            raise ValueError(
                f"{field}.trade_date: {line_date!r} is not the list's trade date {trade_date}; "
                "a list holds one day's selection"
            )
        result.append(SelectedBond(code, name.strip(), rank))
    ranks = [b.rank for b in result if b.rank is not None]
    if len(ranks) != len(set(ranks)):
        raise ValueError("bonds: two lines have the same rank")
    return result


def selection_parse_csv(data: bytes) -> list[dict]:
    """CSV with a `code` column (and optional `name`, `rank`, `trade_date`), UTF-8 (with or without BOM) or GBK."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError("the file is neither UTF-8 nor GBK text")
    try:
        return _csv_bonds(text)
    except csv.Error as exc:
        raise ValueError(f"the file is not readable CSV: {exc}") from None


def _csv_bonds(text: str) -> list[dict]:
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
            # ASCII only: str.isdigit() is also true for '²' or '٣', which int() then refuses or misreads.
            if not (rank.isascii() and rank.isdigit()):
                raise ValueError(
                    f"line {line_no}: rank {rank!r} is not a whole number written with digits 0-9"
                )
            rank = int(rank)
        bond = {"code": row["code"], "name": row.get("name", ""), "rank": rank or None}
        if row.get("trade_date"):
            bond["trade_date"] = row["trade_date"]
        bonds.append(bond)
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
    security_names_upsert(names={bond.code: bond.name for bond in bonds}, source=SOURCE_SELECTION)
    return selection


def factorcat_selection_get(*, rotation: RotationStrategy, trade_date: date) -> list[SelectedBond]:
    """Factor Cat's list for the rotation's record, only when made for `trade_date`; stores nothing.

    Refused (RotationError saying why) when an item cannot be read, the list is
    empty, or any date it carries is another day's or missing (DESIGN §5.1).
    """
    from ..credentials import with_relogin

    answer = with_relogin(
        rotation.factorcat_account, lambda client: client.today_selection(rotation.factorcat_history_id)
    )
    record = rotation.factorcat_history_id
    if answer.problems:
        shown = "; ".join(answer.problems[:5]) + ("; …" if len(answer.problems) > 5 else "")
        raise RotationError.of("selection_unreadable", record=record, detail=shown)
    if not answer.bonds:
        raise RotationError.of("selection_empty", record=record, day=trade_date.isoformat())
    problem = decisions.selection_date_problem(
        trade_date=trade_date,
        listed=answer.trade_date,
        bond_dates={bond.code: bond.trade_date for bond in answer.bonds},
    )
    if problem:
        raise RotationError.of("selection_not_today", record=record, detail=problem)
    return [SelectedBond(b.code, b.name, b.rank, b.price) for b in answer.bonds]


def selection_fetch_factorcat(*, rotation: RotationStrategy, today: date) -> Selection:
    """Factor Cat's list for `today`, stored."""
    return selection_store(
        rotation=rotation,
        trade_date=today,
        bonds=factorcat_selection_get(rotation=rotation, trade_date=today),
        source=Selection.Source.FACTORCAT,
        received_from=rotation.factorcat_account.base_url,
    )


def selection_uploaded(*, rotation: RotationStrategy, trade_date: date) -> Selection:
    """The latest list uploaded for `trade_date` (CSV or API); never another day's."""
    selection = (
        Selection.objects.filter(rotation=rotation, trade_date=trade_date)
        .order_by("-created_at", "-id")
        .first()
    )
    if selection is None:
        raise RotationError.of("no_selection", day=trade_date.isoformat())
    return selection


def selection_for(
    *, rotation: RotationStrategy, trade_date: date
) -> tuple[Selection | None, list[SelectedBond]]:
    """The list a run on `trade_date` decides from: (the stored upload, its bonds) or (None, Factor Cat's
    fresh list, to be stored only when the run writes its target)."""
    if rotation.source == RotationStrategy.Source.FACTORCAT:
        return None, factorcat_selection_get(rotation=rotation, trade_date=trade_date)
    selection = selection_uploaded(rotation=rotation, trade_date=trade_date)
    if selection.trade_date != trade_date:  # the query guarantees it; a run trades only its own day's list
        raise RotationError.of(
            "selection_other_day", listed=selection.trade_date.isoformat(), day=trade_date.isoformat()
        )
    bonds = [SelectedBond(i.code, i.name, i.rank, i.price) for i in selection.items.all()]
    return selection, bonds
