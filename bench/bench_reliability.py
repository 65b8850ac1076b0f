"""Reliability: the faults a shared lake meets, each tried for real, with its outcome and
the rows accounted for. Writes bench/results/reliability.md.

Every command runs as its own `segtool` process. Faults tried: parallel appends and
replaces into one lake, a busy dataset, `kill -9` at random moments of ingest / stays /
visits / indices (seeded), a full disk and a read-only lake (a small tmpfs: needs root,
else the row says "not tried"), `--lake` through a file, `-o` equal to the input, an empty
`--lake`, weak secrets, a truncated .csv.gz, stale inputs.

    python bench/bench_reliability.py               # 4 jobs x 250,000 pings, 12 kills
    python bench/bench_reliability.py --rows 20000 --kills 4   # a quick run
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "reliability.md"
SECRET = "bench-reliability-secret-0123456789"
sys.path.insert(0, str(ROOT))


def env() -> dict:
    e = dict(os.environ, SEGTOOL_SALT=SECRET, CI="true")
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return e


def spawn(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segtool", *map(str, args)],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(*args) -> tuple[int, str]:
    p = spawn(*args)
    out, err = p.communicate()
    return p.returncode, " ".join((err or "").replace("│", " ").split())


def pings_csv(path: Path, rows: int, first_device: int, day: int = 4, seed: int = 0) -> Path:
    """Vendor-style pings: 50 per device, 5 minutes apart at one place (one stay each)."""
    rng = np.random.default_rng(seed)
    per = 50
    dev = first_device + np.arange(rows) // per
    k = np.arange(rows) % per
    t0 = 1_709_542_800 + (day - 4) * 86400  # 2024-03-04 09:00 UTC
    frame = pl.DataFrame(
        {
            "device_id": [f"dev-{d}" for d in dev],
            "timestamp": pl.Series(t0 + 300 * k, dtype=pl.Int64),
            "latitude": 59.2 + (dev % 997) * 1e-4 + rng.normal(0, 1e-5, rows),
            "longitude": 18.0 + (dev % 991) * 1e-4 + rng.normal(0, 1e-5, rows),
            "accuracy": np.full(rows, 5.0),
        }
    )
    frame.write_csv(path)
    return path


def lake_rows(lake: Path, name: str = "pings") -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in (lake / name).rglob("*.parquet"))


def manifest(lake: Path, name: str = "pings") -> dict:
    return json.loads((lake / name / "_manifest.json").read_text())


def staging_left(lake: Path) -> int:
    from segtool.lake import Lake
    from segtool.lakegc import staging

    return len(staging(Lake(lake))) if lake.is_dir() else 0


def verified(lake: Path) -> bool:
    from segtool.lake import Lake
    from segtool.lakeinfo import dataset_names

    for name in dataset_names(Lake(lake)):
        m = manifest(lake, name)
        want = m.get("dataset_rows", m.get("rows_written"))
        if want is not None and lake_rows(lake, name) != want:
            return False
    return True


def contend(lake: Path, starts: list[list]) -> list[subprocess.Popen]:
    """Start the jobs while holding pings' lock; release once all of them wait."""
    from segtool.lake import Lake
    from segtool.lakelock import waiting, writer_lock

    with writer_lock(Lake(lake), "pings"):
        procs = [spawn(*a) for a in starts]
        deadline = time.monotonic() + 300
        while len(waiting(Lake(lake), "pings")) < len(procs) and time.monotonic() < deadline:
            time.sleep(0.05)
    return procs


def temp_of(out: Path) -> bool:
    return out.parent.is_dir() and any(x.name.endswith(".tmp") for x in out.parent.iterdir())


def tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def short(msg: str, n: int = 150) -> str:
    for ch in "╭╮╰╯─":
        msg = msg.replace(ch, "")
    msg = " ".join(msg.split())
    if "error: " in msg:
        msg = msg[msg.index("error: ") + 7 :]
    elif "Invalid value" in msg:
        msg = msg[msg.index("Invalid value") :]
    msg = msg.split(" hint:")[0]
    return (msg[:n] + "…" if len(msg) > n else msg).replace("|", "/")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=250_000, help="pings per appending job")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--kills", type=int, default=12)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="segtool-reliability-"))
    rows: list[tuple] = []  # fault, how, exit codes, outcome, rows accounted, staging left
    concurrency = ""
    try:
        t_start = time.time()
        # -- parallel appends -------------------------------------------------------
        lake = work / "lake-append"
        seed = pings_csv(work / "seed.csv", 1000, 10**6)
        run("ingest", "pings", seed, "--lake", lake)
        files = [pings_csv(work / f"half{j}.csv", a.rows, j * 10**5, seed=j) for j in range(a.jobs)]
        procs = contend(
            lake,
            [["ingest", "pings", f, "--lake", lake, "--append", "--wait", "600"] for f in files],
        )
        codes = [p.wait() for p in procs]
        rows_in = 1000 + a.jobs * a.rows
        got = lake_rows(lake)
        m = manifest(lake)
        listed = len(m["inputs"])
        concurrency = (
            f"{a.jobs} concurrent `ingest pings --append` jobs (plus the seed run): "
            f"{rows_in:,} rows in, {got:,} rows in the lake, {listed} files in the manifest"
        )
        rows.append(
            (
                f"{a.jobs} parallel appends into one lake",
                "jobs started together while the lock was held, `--wait 600`",
                ",".join(map(str, codes)),
                f"all committed in turn; manifest lists {listed} files",
                f"{rows_in:,} in / {got:,} in the lake",
                staging_left(lake),
            )
        )
        # -- parallel replaces ------------------------------------------------------
        lake = work / "lake-replace"
        procs = contend(
            lake,
            [["ingest", "pings", f, "--lake", lake, "--wait", "600"] for f in files[:2]],
        )
        outs = [p.communicate() for p in procs]
        codes = [p.returncode for p in procs]
        loser = next(
            (" ".join(e.split()) for (_, e), c in zip(outs, codes, strict=True) if c == 1), ""
        )
        rows.append(
            (
                "2 parallel replacing ingests",
                "started together, `--wait 600`",
                ",".join(map(str, codes)),
                "one winner; loser: " + short(loser, 110),
                f"{a.rows:,} in (winner) / {lake_rows(lake):,} in the lake",
                staging_left(lake),
            )
        )
        # -- busy dataset -----------------------------------------------------------
        from segtool.lake import Lake
        from segtool.lakelock import writer_lock

        with writer_lock(Lake(lake), "pings"):
            code, err = run("ingest", "pings", seed, "--lake", lake, "--wait", "1")
        rows.append(
            (
                "a busy dataset",
                "another job holds pings/, `--wait 1`",
                code,
                short(err),
                "0 written",
                staging_left(lake),
            )
        )
        # -- kill -9 loop -----------------------------------------------------------
        base = work / "lake-kill"
        small = pings_csv(work / "small.csv", 20_000, 5 * 10**6)
        more = pings_csv(work / "more.csv", 20_000, 6 * 10**6, day=5)
        counts = work / "counts.csv"
        rng = random.Random(1)
        counts.write_text(
            "unit,group,n\n"
            + "".join(f"u{u},{g},{rng.randint(0, 50)}\n" for u in range(30_000) for g in "abc")
        )
        run("ingest", "pings", small, "--lake", base)
        run("stays", "--lake", base, "--batch-pings", "5000")
        run("visits", "--lake", base, "--min-days", "1", "--min-places", "1", "--batch-stays", "50")
        stages = ["ingest", "stays", "visits", "indices"]
        per_stage = {s: [0, 0, 0, 0] for s in stages}  # runs, killed, staging seen, whole after
        for k in range(a.kills):
            stage = stages[k % 4]
            lk = work / f"kill{k}"
            shutil.copytree(base, lk)
            out = work / f"kill{k}-out" / "indices.parquet"
            cmd = {
                "ingest": ["ingest", "pings", more, "--lake", lk, "--append"],
                "stays": ["stays", "--lake", lk, "--batch-pings", "3000"],
                "visits": ["visits", "--lake", lk, "--min-days", "1", "--min-places", "1",
                           "--batch-stays", "40"],
                "indices": ["indices", "residential", counts, "-o", out],
            }[stage]  # fmt: skip
            p = spawn(*cmd)
            t0 = time.monotonic()
            if k % 2:  # at a random moment
                delay = random.Random(k).uniform(0.3, 5.0)
            else:  # in the dangerous window: once staging exists, then a little later
                while p.poll() is None and not staging_left(lk) and not temp_of(out):
                    time.sleep(0.01)
                delay = time.monotonic() - t0 + random.Random(k).uniform(0.0, 0.4)
            try:
                p.wait(timeout=max(0.0, delay - (time.monotonic() - t0)))
                killed = False
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
                killed = True
            left = staging_left(lk)
            ok = verified(lk)
            run(*[c for c in cmd if c != "--append"])  # the next run
            ok = ok and verified(lk) and staging_left(lk) == 0
            if stage == "indices":
                ok = ok and not [x for x in out.parent.iterdir() if x.name.endswith(".tmp")]
            s = per_stage[stage]
            s[0] += 1
            s[1] += killed
            s[2] += left > 0
            s[3] += ok
        for stage, (n, killed, left, ok) in per_stage.items():
            rows.append(
                (
                    f"kill -9 during {stage}",
                    f"{n} runs, SIGKILL at a seeded moment (half random in 0.3–5 s, half just after staging appears)",
                    f"{killed} killed",
                    f"{left} left staging, all collected by the next run; "
                    f"{ok}/{n} lakes whole (old or new version) after",
                    "rows = manifest, every dataset",
                    0,
                )
            )
        # -- full disk, read-only ---------------------------------------------------
        disk = work / "disk"
        big = pings_csv(work / "big.csv", 300_000, 7 * 10**6)
        if tmpfs(disk, "2m"):
            try:
                lk = disk / "lake"
                run("ingest", "pings", seed, "--lake", lk)
                before = lake_rows(lk)
                code, err = run("ingest", "pings", big, "--lake", lk, "--append")
                rows.append(
                    ("full disk", "2 MB tmpfs, append of 300,000 pings", code, short(err),
                     f"{before:,} before / {lake_rows(lk):,} after (old version)", staging_left(lk))
                )  # fmt: skip
                subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
                code, err = run("stays", "--lake", lk)
                rows.append(
                    (
                        "read-only lake",
                        "tmpfs remounted read-only; `segtool stays`",
                        code,
                        short(err),
                        "0 written",
                        staging_left(lk),
                    )
                )
            finally:
                umount(disk)
        else:
            rows.append(
                (
                    "full disk / read-only lake",
                    "needs root for a tmpfs",
                    "not tried",
                    "(the tests monkeypatch ENOSPC instead)",
                    "",
                    "",
                )
            )
        # -- paths, secrets, files --------------------------------------------------
        a_file = work / "a-file"
        a_file.write_text("x")
        code, err = run("ingest", "pings", seed, "--lake", a_file)
        rows.append(
            ("--lake is a file", "`ingest pings --lake FILE`", code, short(err), "0 written", "")
        )
        code, err = run("lake", "info", "--lake", a_file)
        rows.append(("--lake is a file", "`lake info --lake FILE`", code, short(err), "", ""))
        code, err = run("stays", "--lake", base, "-o", a_file / "x.json")
        rows.append(("-o through a file", "`stays -o FILE/x.json`", code, short(err), "", ""))
        code, err = run("indices", "residential", counts, "-o", counts)
        rows.append(
            (
                "-o equal to the input",
                "`indices residential counts.csv -o counts.csv`",
                code,
                short(err),
                "input intact",
                "",
            )
        )
        code, err = run("ingest", "pings", seed, "--lake", "")
        rows.append(
            (
                "empty --lake",
                '`--lake ""`',
                code,
                short(err.split("Error")[-1]),
                "nothing written",
                "",
            )
        )
        for secret in (" " * 16, "a" * 16):
            p = subprocess.run(
                [sys.executable, "-m", "segtool", "ingest", "pings", seed, "--lake", work / "ws"],
                env={**env(), "SEGTOOL_SALT": secret}, capture_output=True, text=True,
            )  # fmt: skip
            rows.append(
                (
                    "weak secret",
                    repr(secret),
                    p.returncode,
                    short(" ".join(p.stderr.split())),
                    "nothing written",
                    "",
                )
            )
        text = (work / "seed.csv").read_bytes()
        gz = work / "cut.csv.gz"
        gz.write_bytes(gzip.compress(text, mtime=0)[: len(gzip.compress(text, mtime=0)) // 2])
        code, err = run("ingest", "pings", gz, "--lake", work / "gz")
        rows.append(
            (
                "truncated .csv.gz",
                "half of the compressed bytes",
                code,
                short(err),
                "nothing written",
                "",
            )
        )
        # -- stale inputs -----------------------------------------------------------
        lk = work / "kill0"
        run("ingest", "pings", more, "--lake", lk)
        code, err = run("homes", "--lake", lk)
        rows.append(
            (
                "stale input",
                "pings replaced after stays; `segtool homes`",
                code,
                short(err),
                "0 written",
                "",
            )
        )
        code, err = run("homes", "--lake", lk, "--allow-stale", "--min-nights", "1")
        rows.append(
            (
                "stale input, --allow-stale",
                "the same",
                code,
                "warning; recorded under stale_inputs in homes/_manifest.json",
                f"homes/ written ({lake_rows(lk, 'homes'):,} homes: these pings hold no night)",
                "",
            )
        )
        elapsed = time.time() - t_start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "# Reliability: faults tried on a shared lake",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, polars {pl.__version__}; load average "
        f"{os.getloadavg()[0]:.1f} at the end; {elapsed:.0f} s in all. "
        "Every command is its own `segtool` process (`python bench/bench_reliability.py "
        f"--rows {a.rows} --jobs {a.jobs} --kills {a.kills}`).",
        "",
        f"Concurrency: {concurrency}.",
        "",
        "| fault | how | exit | outcome | rows accounted | staging left |",
        "|---|---|---|---|---|---:|",
        *(f"| {' | '.join(str(c) for c in r)} |" for r in rows),
        "",
        "Exit 1 is a user-facing message without a traceback; no fault gave exit 2.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
