"""`segtool lake verify`: does every dataset still match its manifest?

For each dataset (`<name>/_manifest.json`, `_rejects/<name>/` included):

- the manifest is readable JSON;
- every part it lists (`parts`: path, bytes, rows, sha256 — recorded by `Lake.writing`) is
  present, with the same size, the same sha256 and, for Parquet, the same row count (read
  from the file's footer);
- the parts' rows add up to `dataset_rows` where the manifest records it;
- `rows_in = rows_written + rows_rejected` where the manifest records all three;
- no file in the folder is missing from `parts` (an orphan);

and for the lake as a whole: staging folders left by a killed run (`.tmp-*`, `.old-*`,
`.spool-*`, `.scratch-*` that no live run holds; `segtool lake gc` removes them) and
orphaned folders or files (no manifest). A manifest written before parts were recorded is
a note, not an error: its files cannot be checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from segtool.lake import MANIFEST_NAME, Lake, sha256_file

OK, NOTE, ERROR = "ok", "note", "error"


@dataclass(frozen=True)
class Finding:
    dataset: str
    check: str
    status: str  # ok, note, error
    detail: str = ""


def verify_lake(lake: Lake, *, hashes: bool = True) -> list[Finding]:
    """Every finding, errors and notes, plus one `ok` row per dataset that passed all its
    checks. `hashes=False` skips the sha256 of parts (sizes and rows are still checked)."""
    out: list[Finding] = []
    root = lake.root
    if not root.is_dir():
        return [Finding("", "lake", ERROR, f"{root} is not a folder")]
    for name in _datasets(root):
        out += _verify_dataset(root, name, hashes)
    out += _staging(lake)
    out += _orphans(root)
    return out


def _datasets(root: Path) -> list[str]:
    names = []
    for folder, prefix in ((root, ""), (root / "_rejects", "_rejects/")):
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if (
                    p.is_dir()
                    and not p.name.startswith((".", "_"))
                    and (p / MANIFEST_NAME).exists()
                ):
                    names.append(prefix + p.name)
    return names


def _verify_dataset(root: Path, name: str, hashes: bool) -> list[Finding]:
    import pyarrow.parquet as pq

    folder = root / name
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError) as e:
        return [Finding(name, "manifest", ERROR, f"unreadable: {e}")]
    found: list[Finding] = []
    parts = manifest.get("parts")
    if parts is None:
        found.append(
            Finding(
                name,
                "parts",
                NOTE,
                "the manifest lists no parts (written before "
                "segtool recorded them): files not checked",
            )
        )
    else:
        listed = set()
        total = 0
        for part in parts:
            rel = part["path"]
            listed.add(rel)
            p = folder / rel
            if not p.is_file():
                found.append(Finding(name, "files present", ERROR, f"{rel} is missing"))
                continue
            size = p.stat().st_size
            if size != part.get("bytes"):
                found.append(
                    Finding(
                        name,
                        "bytes",
                        ERROR,
                        f"{rel}: {size:,} bytes, manifest {part.get('bytes'):,}",
                    )
                )
            elif hashes and sha256_file(p) != part.get("sha256"):
                found.append(
                    Finding(name, "sha256", ERROR, f"{rel}: content differs from the manifest")
                )
            if "rows" in part:
                try:
                    rows = pq.read_metadata(p).num_rows
                except Exception as e:  # a damaged footer is a finding, not a crash
                    found.append(
                        Finding(name, "rows", ERROR, f"{rel}: not readable as Parquet ({e})")
                    )
                    continue
                total += rows
                if rows != part["rows"]:
                    found.append(
                        Finding(
                            name, "rows", ERROR, f"{rel}: {rows:,} rows, manifest {part['rows']:,}"
                        )
                    )
        if manifest.get("dataset_rows") is not None and manifest.get("dataset") in (
            None,
            name.split("/")[-1],
        ):
            want = manifest["dataset_rows"]
            if not name.startswith("_rejects/") and total != want:
                found.append(
                    Finding(
                        name,
                        "rows",
                        ERROR,
                        f"parts hold {total:,} rows, manifest dataset_rows {want:,}",
                    )
                )
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder).as_posix()
            if p.is_file() and p.name != MANIFEST_NAME and rel not in listed:
                found.append(Finding(name, "orphaned file", ERROR, f"{rel} is not in the manifest"))
    r_in, r_out, r_rej = (manifest.get(k) for k in ("rows_in", "rows_written", "rows_rejected"))
    if None not in (r_in, r_out, r_rej) and r_in != r_out + r_rej:
        found.append(
            Finding(
                name, "rows_in = written + rejected", ERROR, f"{r_in:,} ≠ {r_out:,} + {r_rej:,}"
            )
        )
    if not any(f.status == ERROR for f in found):
        n = len(parts or [])
        found.insert(
            0,
            Finding(
                name, "all", OK, f"{n} part(s) as in the manifest" if parts is not None else ""
            ),
        )
    return found


def _staging(lake: Lake) -> list[Finding]:
    from segtool.errors import BusyError
    from segtool.lakegc import staging
    from segtool.lakelock import writer_lock

    out = []
    for s in staging(lake):
        rel = s.path.relative_to(lake.root).as_posix()
        try:
            with writer_lock(lake, s.dataset, wait=0):  # nobody holds it: a dead run's
                out.append(
                    Finding(
                        s.dataset,
                        "leftover staging",
                        ERROR,
                        f"{rel} ({s.bytes:,} bytes) from a killed run; `segtool lake gc` removes it",
                    )
                )
        except BusyError as e:
            holder = e.holder.describe() if e.holder else "another job"
            out.append(Finding(s.dataset, "staging in use", NOTE, f"{rel}: {holder} is writing"))
    return out


def _orphans(root: Path) -> list[Finding]:
    from segtool.lakegc import STAGING
    from segtool.lakelock import LOCKS

    out = []
    for folder, prefix in ((root, ""), (root / "_rejects", "_rejects/")):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.name in (LOCKS, "_rejects") or STAGING.match(p.name):
                continue
            if p.is_dir() and (p / MANIFEST_NAME).exists():
                continue
            what = "folder without a manifest" if p.is_dir() else "file outside any dataset"
            out.append(Finding(prefix + p.name, "orphaned", ERROR, f"{prefix}{p.name}: {what}"))
    return out
