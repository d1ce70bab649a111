"""A sweep's rows as a table: CSV for a spreadsheet, text lines for the terminal.

The columns are the grid's fields under their config names, then what each run measured; a run
that failed has an empty measurement and says why under `error` (a column only where some run failed).

    >>> columns(("lam", "seed"), [{"lam": 0.1, "seed": 0, "w1_ratio": 1.5}])
    ['lam', 'seed', 'w1_ratio', 'modes', 'hq', 'steps', 'seconds']
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

MEASURED = ("w1_ratio", "modes", "hq", "steps", "seconds")


def columns(keys: tuple[str, ...], rows: list[dict]) -> list[str]:
    errors = ["error"] if any("error" in row for row in rows) else []
    return [*keys, *MEASURED, *errors]


def write_csv(path: str | Path, keys: tuple[str, ...], rows: list[dict]) -> None:
    """One line a run, in the grid's order, under a header line of columns(keys, rows)."""
    with open(path, "w", newline="") as f:
        f.write(csv_text(keys, rows))


def csv_text(keys: tuple[str, ...], rows: list[dict]) -> str:
    """The CSV file's text (a page offers it as a download)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns(keys, rows), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def run_line(keys: tuple[str, ...], row: dict) -> str:
    """A finished run in one line: `lam=0.1 seed=0  W1/floor 1.52  modes 8  hq 0.81  1.03 s`."""
    where = " ".join(f"{k}={row[k]}" for k in keys)
    if "error" in row:
        return f"{where}  error: {row['error']}"
    return (f"{where}  W1/floor {row['w1_ratio']:.3g}  modes {row['modes']}  hq {row['hq']:.2f}"
            f"  {row['seconds']:.2f} s")


def text_table(keys: tuple[str, ...], rows: list[dict]) -> str:
    """The rows under their column names, aligned, numbers to 4 significant digits."""
    names = columns(keys, rows)
    cells = [names] + [[_cell(row.get(name, "")) for name in names] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(names))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)).rstrip() for line in cells)


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
