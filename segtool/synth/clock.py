"""Local days and wall-clock times in Europe/Stockholm, turned into UTC instants.

People live by the wall clock: they leave for work at 07:40 local time, summer time or
not. The schedule is therefore built in wall-clock seconds since local midnight and
converted to UTC here, correctly across the switches to and from summer time:

- spring forward (e.g. 2024-03-31, 02:00 → 03:00): wall times in the missing hour map
  to the instant of the switch;
- fall back (e.g. 2024-10-27, 03:00 → 02:00): wall times in the repeated hour take the
  earlier instant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from segtool.synth.params import TIME_ZONE

DAY_S = 86400


@dataclass(frozen=True)
class Clock:
    """The observation period: `days` local days from `start`.

    midnight[d]: UTC epoch seconds of local midnight starting day d (d = 0 … days + 1).
    switch[d]:   seconds after local midnight of day d at which the UTC offset changes
                 (inf if it does not); delta[d]: the change in seconds (+3600 in spring).
    workday[d]:  Monday–Friday and not a Swedish public holiday.
    """

    start: dt.date
    days: int
    midnight: np.ndarray
    switch: np.ndarray
    delta: np.ndarray
    workday: np.ndarray
    weekday: np.ndarray
    offset0: float  # UTC offset (s) at the start of the period

    @property
    def t0(self) -> int:
        return int(self.midnight[0])

    @property
    def t1(self) -> int:
        return int(self.midnight[self.days])

    def to_utc(self, day: np.ndarray, wall: np.ndarray) -> np.ndarray:
        """UTC epoch seconds of wall-clock time `wall` (seconds after local midnight of
        `day`; may exceed 24 h for times after midnight)."""
        day = np.asarray(day, dtype=np.int64)
        wall = np.asarray(wall, dtype=np.float64)
        extra = np.floor(wall / DAY_S).astype(np.int64)
        d = np.clip(day + extra, 0, len(self.midnight) - 1)
        t = wall - extra * DAY_S
        mid = self.midnight[d]
        sw = self.switch[d]
        delta = self.delta[d]
        spring = np.where(delta > 0, -np.clip(t - sw, 0.0, np.abs(delta)), 0.0)
        fall = np.where((delta < 0) & (t >= sw), -delta, 0.0)
        return mid + t + spring + fall

    def utc_offset(self, t: np.ndarray) -> np.ndarray:
        """UTC offset in seconds at UTC epoch seconds `t` (within the period)."""
        switches = np.flatnonzero(np.isfinite(self.switch))
        instants = self.midnight[switches] + self.switch[switches]
        offsets = self.offset0 + np.concatenate([[0.0], np.cumsum(self.delta[switches])])
        return offsets[np.searchsorted(instants, t, side="right")]

    def iso_local(self, t: np.ndarray) -> np.ndarray:
        """ISO 8601 local times with offset ("2024-03-31T03:12:09+02:00") of integer UTC
        epoch seconds within the period, as a (n, 25) byte matrix — gathered from three
        small tables (dates, times of day, offsets), so millions format in a blink."""
        t = np.asarray(t, dtype=np.int64)
        off = self.utc_offset(t).astype(np.int64)
        local = t + off
        base = int(self.midnight[0] + self.offset0)  # local midnight of day 0, as naive epoch
        day = (local - base) // DAY_S
        sec = (local - base) - day * DAY_S
        dates = np.array(
            [
                (self.start + dt.timedelta(days=i)).isoformat() + "T"
                for i in range(-1, self.days + 3)
            ],
            dtype="S11",
        )  # a loop over days
        uniq = np.unique(off)
        signs = np.array(
            [
                ("+" if o >= 0 else "-") + f"{abs(o) // 3600:02d}:{abs(o) % 3600 // 60:02d}"
                for o in uniq
            ],
            dtype="S6",
        )  # one entry per distinct offset
        return np.hstack(
            [
                dates.view(np.uint8).reshape(-1, 11)[np.clip(day + 1, 0, self.days + 3)],
                _TIMES_OF_DAY[sec],
                signs.view(np.uint8).reshape(-1, 6)[np.searchsorted(uniq, off)],
            ]
        )


def _times_of_day() -> np.ndarray:
    """ "HH:MM:SS" of every second of a day, as a (86400, 8) byte matrix."""
    s = np.arange(DAY_S)
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    colon = np.full(DAY_S, ord(":"))
    digits = [h // 10, h % 10, None, m // 10, m % 10, None, sec // 10, sec % 10]
    cols = [colon if d is None else ord("0") + d for d in digits]
    return np.column_stack(cols).astype(np.uint8)


_TIMES_OF_DAY = _times_of_day()


def make_clock(start: dt.date, days: int, tz: str = TIME_ZONE) -> Clock:
    import holidays

    zone = ZoneInfo(tz)
    n = days + 2
    dates = [start + dt.timedelta(days=i) for i in range(n)]
    midnight = np.array(
        [dt.datetime.combine(d, dt.time(0), tzinfo=zone).timestamp() for d in dates],
        dtype=np.float64,
    )
    switch = np.full(n, np.inf)
    delta = np.zeros(n)
    utc = dt.UTC
    for i in range(n - 1):  # a loop over days (at most 368), not over devices
        off0 = dt.datetime.fromtimestamp(midnight[i], utc).astimezone(zone).utcoffset()
        off1 = dt.datetime.fromtimestamp(midnight[i + 1], utc).astimezone(zone).utcoffset()
        if off0 != off1:
            # find the hour (in elapsed seconds since midnight) at which the offset changes
            for h in range(1, 25):
                off = dt.datetime.fromtimestamp(midnight[i] + 3600 * h, utc).astimezone(zone)
                if off.utcoffset() != off0:
                    switch[i] = 3600.0 * h
                    delta[i] = (off1 - off0).total_seconds()
                    break
    hol = holidays.country_holidays("SE", years=sorted({d.year for d in dates}))
    weekday = np.array([d.weekday() for d in dates], dtype=np.int8)
    workday = np.array([d.weekday() < 5 and d not in hol for d in dates])
    offset0 = (
        dt.datetime.fromtimestamp(midnight[0], utc).astimezone(zone).utcoffset().total_seconds()
    )
    return Clock(start, days, midnight, switch, delta, workday, weekday, offset0)
