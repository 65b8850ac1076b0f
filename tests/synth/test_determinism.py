"""Same seed, same bytes (every file); another seed, other data."""

from __future__ import annotations

import hashlib

from segtool.synth import SynthParams, generate_city

PARAMS = SynthParams(devices=30, days=3, seed=9, gzip=True, files=2, ping_interval_min=10)


def digests(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path):
    a = generate_city(PARAMS, tmp_path / "a")
    b = generate_city(PARAMS, tmp_path / "b")
    da, db = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert set(da) == {
        "README.md",
        "_manifest.json",
        "areas.gpkg",
        "landuse.gpkg",
        "pois.gpkg",
        "population.csv",
        "pings-001.csv.gz",
        "pings-002.csv.gz",
        "truth/areas.parquet",
        "truth/devices.parquet",
        "truth/places.parquet",
        "truth/planted_rejects.csv",
        "truth/stays.parquet",
    }
    assert da == db
    assert a.files == b.files


def test_rerun_into_the_same_folder_replaces_it(tmp_path):
    generate_city(PARAMS, tmp_path / "a")
    first = digests(tmp_path / "a")
    generate_city(PARAMS, tmp_path / "a")
    assert digests(tmp_path / "a") == first
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temporary folders left


def test_other_seed_other_data(tmp_path):
    from dataclasses import replace

    generate_city(PARAMS, tmp_path / "a")
    generate_city(replace(PARAMS, seed=10), tmp_path / "b")
    da, db = digests(tmp_path / "a"), digests(tmp_path / "b")
    for name in da:
        assert da[name] != db[name], name
