"""One profile folder on disk: the measurements CSV, the JSON files, the JSON-lines logs (``_profile``).

Each measured group is appended before the next starts, so an interrupted profile resumes from what
it stored; a row or line cut short by a kill is skipped and measured again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

from edgetune.predict._base import ProfileError

# Each row keeps the kernel's graph (JSON), so regressors can be retrained with new features without re-measuring.
COLUMNS = ("id", "head", "kind", "macs", "raw_ms", "ci_low_ms", "ci_high_ms", "samples", "converged",
           "min_ms", "reference_ms", "latency_ms", "time", "graph")
_TEXT = ("head", "kind", "graph")


class ProfileStore:
    """Reads and appends the files of one profile folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder
        self.csv = folder / "measurements.csv"
        self.state_path = folder / "state.json"
        self.fusion_path = folder / "fusion.json"
        self.chains_path = folder / "chains.jsonl"
        self.borders_path = folder / "borders.jsonl"

    def clear(self) -> None:
        """Delete this profile's own files only (profiles/<target>/tvm/ also holds TVM tuning records)."""
        import shutil

        for name in ("measurements.csv", "chains.jsonl", "borders.jsonl", "fusion.json", "state.json",
                     "environment.json", "metadata.json", "references.json"):
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / "models", ignore_errors=True)
        shutil.rmtree(self.path / "adapted", ignore_errors=True)  # corrections of the profile being discarded

    def read_json(self, path: Path) -> Optional[dict]:
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{path} is corrupt ({exc.msg}); delete the folder or re-run with --fresh") from None

    def write_json(self, path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(path)

    def rows(self) -> list[dict]:
        if not self.csv.exists():
            return []
        with self.csv.open(newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ProfileError(f"{self.csv} has unexpected columns (another edgetune version?); re-run with --fresh")
            rows = []
            for row in reader:
                try:
                    rows.append({k: (v if k in _TEXT else float(v or 0.0)) for k, v in row.items()})
                    json.loads(rows[-1]["graph"])  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    continue  # a row cut short by a kill mid-write: measured again
            return rows

    def lines(self, path: Path) -> list[dict]:
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill mid-write
        return out

    def chains(self) -> list[dict]:
        return self.lines(self.chains_path)

    def borders(self) -> list[dict]:
        return self.lines(self.borders_path)

    def append_lines(self, path: Path, items: list[dict]) -> None:
        with path.open("a") as f:
            f.writelines(json.dumps(c) + "\n" for c in items)
            f.flush()

    def append(self, rows: list[dict]) -> None:
        new = not self.csv.exists()
        with self.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows({k: v for k, v in row.items() if k in COLUMNS} for row in rows)
            f.flush()
