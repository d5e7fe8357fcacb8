"""bench/api.py's table: the targets are for PostgreSQL, so SQLite rows say "n/a" instead of "MISSED"."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(backend: str, mode: str, rps: float, p99_at_rate: float) -> dict:
    saturation = {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "runs_rps": [rps]}
    return {
        "backend": backend,
        "mode": mode,
        "saturation": saturation,
        "ratio": rps / 1000,
        "fixed_rate": {"p50_ms": 1.0, "p99_ms": p99_at_rate},
    }


def test_targets_are_judged_on_postgresql_rows_only(capsys):
    bench = runpy.run_path(str(ROOT / "bench" / "api.py"))
    runs = [
        run("bare", "bare", 1000, 1.0),
        run("sqlite", "subscribe", 400, 80.0),  # below both targets: not a miss, they are PostgreSQL's
        run("sqlite", "provide", 190, 80.0),
        run("postgresql", "subscribe", 530, 1.9),
        run("postgresql", "provide", 250, 60.0),  # below the 0.3 ratio and over 50 ms: missed
    ]
    bench["print_table"](runs)
    lines = capsys.readouterr().out.splitlines()

    sqlite_rows = [line for line in lines if line.startswith("sqlite")]
    assert len(sqlite_rows) == 2
    for line in sqlite_rows:
        assert "MISSED" not in line and "ok" not in line and line.count("n/a") == 2, line
    postgres = [line for line in lines if line.startswith("postgresql")]
    assert ">=0.5 ok" in postgres[0] and "<50 ok" in postgres[0]
    assert ">=0.3 MISSED" in postgres[1] and "<50 MISSED" in postgres[1]
