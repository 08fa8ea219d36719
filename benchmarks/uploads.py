"""The upload bodies the ingest benchmarks send (standard library only: the jq2qmt peer's
interpreter imports it too, in benchmarks/ingest_cpu.py)."""

import json

UPDATE_PATH = "/api/v1/positions/update"
CODES = [f"{600000 + i:06d}.XSHG" if i % 2 == 0 else f"{1 + i:06d}.XSHE" for i in range(5000)]


def upload_body(sequence: int, lines: int, strategy: str) -> bytes:
    """A `lines`-line upload whose volumes and costs change with `sequence` (never the same target twice)."""
    positions = [
        {
            "code": CODES[i],
            "name": f"Stock {i}",
            "volume": 100 * (1 + (sequence * 7 + i) % 500),
            "cost": round(5 + (sequence + i) % 300 * 0.37, 2),
        }
        for i in range(lines)
    ]
    return json.dumps(
        {
            "strategy_name": strategy,
            "positions": positions,
            "total_value": 1_000_000 + sequence,
            "cash": 12_345.67,
        }
    ).encode("utf-8")
