"""A plain-Python reference of the stay algorithm, written from the docstring of
`segtool.mobility.stays` (lists and loops, no numba, no shared helpers) — the oracle the
compiled kernel is checked against on random traces."""

from __future__ import annotations

import math

from segtool.mobility.stays import StayParams

M_PER_DEG = 6_371_008.8 * math.pi / 180.0


def _within(lat_c, lon_c, lat, lon, coslat, r_deg2):
    dy = lat - lat_c
    dx = (lon - lon_c) * coslat
    return dx * dx + dy * dy <= r_deg2


def reference_stays(rows: list[tuple[int, int, float, float]], p: StayParams) -> list[tuple]:
    """rows: (device, t_us, lat, lon) sorted by (device, t). Returns stays as
    (device, start_us, end_us, n_pings, mean_lat, mean_lon) in order."""
    r_deg2 = (p.radius_m / M_PER_DEG) ** 2
    gap = round(p.max_gap_s * 1e6)
    max_stay = round(p.max_stay_s * 1e6)
    merge_gap = round(p.merge_gap_s * 1e6)
    cut = p.long_stays == "cut"
    out = []
    devices = sorted({r[0] for r in rows})
    for d in devices:
        pts = [r for r in rows if r[0] == d]
        t = [r[1] for r in pts]
        lat = [r[2] for r in pts]
        lon = [r[3] for r in pts]
        n = len(pts)

        def mean(idx, lat=lat, lon=lon):
            s_lat = 0.0
            s_lon = 0.0
            for k in idx:
                s_lat += lat[k]
                s_lon += lon[k]
            return s_lat / len(idx), s_lon / len(idx)

        # 1–3: candidates
        cands = []
        i = 0
        while i < n:
            members = [i]
            coslat = math.cos(lat[i] * math.pi / 180.0)
            j = i + 1
            while j < n:
                last = members[-1]
                if t[j] - t[last] > gap:
                    break
                if cut and t[j] - t[i] >= max_stay:
                    break
                c_lat, c_lon = mean(members)
                # r grows by √(1 + 1/n) for a centre of n pings (centre_slack)
                r = p.radius_m / M_PER_DEG
                if p.centre_slack:
                    r *= math.sqrt(1.0 + 1.0 / len(members))
                near2, band2 = r * r, (p.noise_band * r) ** 2
                if _within(c_lat, c_lon, lat[j], lon[j], coslat, near2):
                    members.append(j)
                    j += 1
                    continue
                # skipped while a later ping comes back before more than max_outliers
                # pings lie beyond the noise band
                far = 0 if _within(c_lat, c_lon, lat[j], lon[j], coslat, band2) else 1
                back = None
                m = j + 1
                while far <= p.max_outliers and m < n:
                    if t[m] - t[last] > gap or (cut and t[m] - t[i] >= max_stay):
                        break
                    if _within(c_lat, c_lon, lat[m], lon[m], coslat, near2):
                        back = m
                        break
                    if not _within(c_lat, c_lon, lat[m], lon[m], coslat, band2):
                        far += 1
                    m += 1
                if back is None:
                    break
                j = back
            cands.append(members)
            i = members[-1] + 1
        # 4: merge pieces of one stay
        groups: list[list[int]] = []
        k = 0
        while k < len(cands):
            if groups:
                g = groups[-1]
                found = None
                for q in range(k, len(cands)):
                    if t[cands[k][0]] - t[g[-1]] > gap:
                        break
                    junk_span = t[cands[q - 1][-1]] - t[cands[k][0]] if q > k else 0
                    if q > k and (
                        junk_span >= merge_gap or t[cands[q][0]] - t[cands[q - 1][-1]] > gap
                    ):
                        break
                    if cut and t[cands[q][-1]] - t[g[0]] >= max_stay:
                        continue
                    g_lat, g_lon = mean(g)
                    q_lat, q_lon = mean(cands[q])
                    if _within(
                        g_lat, g_lon, q_lat, q_lon, math.cos(g_lat * math.pi / 180.0), r_deg2
                    ):
                        found = q
                        break
                if found is not None:
                    g.extend(cands[found])
                    k = found + 1
                    continue
            groups.append(list(cands[k]))
            k += 1
        # 5 and 6: duration (of the pings, or of the filled bounds for two pings or
        # more), long stays, and bounds moved to the middle of a reporting gap next to them
        for g in groups:
            # g's pings are consecutive indices; skipped outliers lie between its first
            # and last member, so the pings around it are g[0] − 1 and g[-1] + 1
            start, end = t[g[0]], t[g[-1]]
            fill = round(p.fill_gap_s * 1e6)
            if fill > 0 and g[0] > 0 and fill < t[g[0]] - t[g[0] - 1] <= gap:
                start = t[g[0]] - (t[g[0]] - t[g[0] - 1]) // 2
            if fill > 0 and g[-1] + 1 < n and fill < t[g[-1] + 1] - t[g[-1]] <= gap:
                end = t[g[-1]] + (t[g[-1] + 1] - t[g[-1]]) // 2
            dur = t[g[-1]] - t[g[0]]
            min_dur = round(p.min_duration_s * 1e6)
            if dur < min_dur and (len(g) < 2 or end - start < min_dur):
                continue
            if p.long_stays == "drop" and dur >= max_stay:
                continue
            m_lat, m_lon = mean(g)
            out.append((d, start, end, len(g), m_lat, m_lon))
    return out


def assert_kernel_matches_reference(frame, params: StayParams) -> None:
    """The numba kernel's stays equal the plain-Python reference's, stay by stay."""
    import numpy as np
    import polars as pl

    from segtool.mobility.stays import detect_stays

    got, _ = detect_stays(frame, params)
    ordered = sorted(
        zip(
            frame["device"].to_list(),
            frame["ts"].cast(pl.Int64).to_list(),
            frame["lat"].to_list(),
            frame["lon"].to_list(),
            strict=True,
        )
    )
    ref = reference_stays(ordered, params)
    assert got.height == len(ref)
    assert got["device"].to_list() == [r[0] for r in ref]
    assert got["start"].cast(pl.Int64).to_list() == [r[1] for r in ref]
    assert got["end"].cast(pl.Int64).to_list() == [r[2] for r in ref]
    assert got["n_pings"].to_list() == [r[3] for r in ref]
    assert np.allclose(got["lat"].to_numpy(), [r[4] for r in ref], rtol=0, atol=1e-12)
