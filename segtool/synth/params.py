"""The generator's parameters (a frozen dataclass the manifest serialises) and its report."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

from segtool.errors import UsageError

TIME_ZONE = "Europe/Stockholm"
GROUPS = ("Q1", "Q2", "Q3", "Q4")  # income quartiles, Q1 = lowest income
MAX_AREAS = 8000  # area ids are 0180C1001 … 0180C9000


@dataclass(frozen=True)
class SynthParams:
    """Everything that shapes a synthetic city. Same parameters, same bytes.

    devices, days, seed: panel size, observation period (whole local days from `start`)
        and the seed of every random stream.
    segregation: 0 = every area has the city's income mix, 1 = each area holds one
        quartile; in between the mix follows a smooth spatial income field.
    homophily: h ≥ 0; a device of group g weights a candidate place by
        attractiveness × (K·φ_g)^h, φ being the place's group flavour.
    start: first local day (ISO date); the default (Monday 2024-03-25) puts the switch to
        summer time (Sunday 2024-03-31) and Easter (Good Friday 03-29 and Easter Monday
        04-01 are days off) inside a 14-day period.
    areas: number of register areas; 0 = automatic (devices / 8, at least 12).
    ping_interval_min: mean minutes between pings while a device is observed (each
        device has its own rate around it; intervals are gamma distributed).
    gap_share: share of time with no pings (alternating on/off periods).
    gap_mean_min: mean minutes of one gap (default 120; e.g. 33 with gap_share 0.3 gives
        app-style duty cycling, a gap about every 78 minutes).
    bursts_per_day: mean bursts per device and day (5–30 pings 1–10 s apart; default 0).
    noise_m: per-axis σ (metres) of the GPS error; 0 (default) = drawn from the reported
        accuracy (σ = accuracy / 1.51); > 0 = this σ whatever the reported accuracy says.
    accuracy_m: median reported accuracy (68 % error radius, metres); the error per axis
        has σ = accuracy / 1.51 (so the median error is ~0.8 × accuracy).
    outlier_share: share of pings displaced by 150–1500 m (still valid rows).
    low_accuracy_share, duplicate_share, malformed_share: shares of rows planted with
        accuracy > 100 m, exact duplicates, and one of the other malformed kinds.
    gzip: write pings as .csv.gz; files: split the pings into this many files (by device).
    """

    devices: int = 400
    days: int = 14
    seed: int = 0
    segregation: float = 0.5
    homophily: float = 1.0
    start: str = "2024-03-25"
    areas: int = 0
    ping_interval_min: float = 4.0
    gap_share: float = 0.25
    accuracy_m: float = 12.0
    outlier_share: float = 0.002
    gap_mean_min: float = 120.0
    bursts_per_day: float = 0.0
    noise_m: float = 0.0
    low_accuracy_share: float = 0.002
    duplicate_share: float = 0.003
    malformed_share: float = 0.002
    gzip: bool = False
    files: int = 1

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise UsageError(f"synth: {msg}")

        if self.devices < 1:
            bad(f"--devices must be at least 1, got {self.devices}")
        if not 1 <= self.days <= 366:
            bad(f"--days must be between 1 and 366, got {self.days}")
        if self.seed < 0:
            bad(f"--seed must be non-negative, got {self.seed}")
        if not 0.0 <= self.segregation <= 1.0 or math.isnan(self.segregation):
            bad(f"--segregation must be in [0, 1], got {self.segregation}")
        if not 0.0 <= self.homophily <= 20.0 or math.isnan(self.homophily):
            bad(f"--homophily must be in [0, 20], got {self.homophily}")
        try:
            dt.date.fromisoformat(self.start)
        except (TypeError, ValueError):
            bad(f"--start must be an ISO date like 2024-03-18, got {self.start!r}")
        if self.areas != 0 and not 2 <= self.areas <= MAX_AREAS:
            bad(f"--areas must be 0 (automatic) or between 2 and {MAX_AREAS}, got {self.areas}")
        if not 0.05 <= self.ping_interval_min <= 720:
            bad(
                f"--ping-interval must be between 0.05 and 720 minutes, got {self.ping_interval_min}"
            )
        if not 0.0 <= self.gap_share <= 0.95:
            bad(f"--gap-share must be in [0, 0.95], got {self.gap_share}")
        if not 1.0 <= self.accuracy_m <= 60.0:
            bad(f"--accuracy must be between 1 and 60 metres, got {self.accuracy_m}")
        if not 1.0 <= self.gap_mean_min <= 1440.0:
            bad(f"--gap-mean must be between 1 and 1440 minutes, got {self.gap_mean_min}")
        if not 0.0 <= self.bursts_per_day <= 100.0:
            bad(f"--bursts must be between 0 and 100 a day, got {self.bursts_per_day}")
        if not 0.0 <= self.noise_m <= 200.0:
            bad(f"--noise must be between 0 and 200 metres, got {self.noise_m}")
        for name in ("outlier_share", "low_accuracy_share", "duplicate_share", "malformed_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 0.2:
                bad(f"{name.replace('_', '-')} must be in [0, 0.2], got {value}")
        if not 1 <= self.files <= self.devices:
            bad(f"--files must be between 1 and --devices, got {self.files}")

    @property
    def start_date(self) -> dt.date:
        return dt.date.fromisoformat(self.start)

    @property
    def n_areas(self) -> int:
        return self.areas or int(min(MAX_AREAS, max(12, round(self.devices / 8))))


@dataclass
class SynthReport:
    """What `generate_city` wrote: counts, the planted segregation, and the files."""

    out: Path
    params: SynthParams
    areas: int
    residents: int
    devices: int
    pois: int
    landuse_polygons: int
    stays: int
    ping_rows: int  # data lines in the ping files (planted bad rows included)
    clean_pings: int  # rows ingest should accept
    planted_rejects: dict[str, int]
    dissimilarity: float  # multigroup D of the population table
    mutual_information: float  # M of the population table (nats)
    first_day: str
    last_day: str
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes

    def summary_rows(self) -> list[tuple[str, str]]:
        """(what, value) pairs for a terminal table."""
        p = self.params
        total = sum(self.files.values())
        rows = [
            ("folder", str(self.out)),
            ("period", f"{self.first_day} … {self.last_day} ({p.days} days, {TIME_ZONE})"),
            ("register areas", f"{self.areas} (DeSO-like, EPSG:3006)"),
            ("residents", f"{self.residents:,}"),
            ("income groups", ", ".join(GROUPS) + " (quartiles)"),
            ("segregation parameter", f"{p.segregation:g}"),
            ("  planted D (multigroup)", f"{self.dissimilarity:.3f}"),
            ("  planted M (nats)", f"{self.mutual_information:.4f}"),
            ("homophily parameter", f"{p.homophily:g}"),
            ("land-use polygons", f"{self.landuse_polygons:,}"),
            ("POIs", f"{self.pois:,}"),
            ("devices", f"{self.devices:,}"),
            ("true stays", f"{self.stays:,}"),
            ("ping rows", f"{self.ping_rows:,}"),
            ("  clean pings", f"{self.clean_pings:,}"),
        ]
        for reason, n in sorted(self.planted_rejects.items()):
            rows.append((f"  planted {reason}", f"{n:,}"))
        rows.append(("files", f"{len(self.files)} ({total / 1e6:.1f} MB)"))
        return rows
