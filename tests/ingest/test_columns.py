"""Column roles: aliases, explicit names, TOML config, clear errors."""

from __future__ import annotations

import pytest

from segtool.errors import UsageError
from segtool.ingest.columns import Roles, load_config, resolve

PINGS = Roles(required=("id", "time", "lat", "lon"), optional=("accuracy",))


@pytest.mark.parametrize(
    "header, expected",
    [
        (
            ["device_id", "timestamp", "latitude", "longitude", "accuracy"],
            ["device_id", "timestamp", "latitude", "longitude", "accuracy"],
        ),
        (["caid", "epoch", "lat", "lng"], ["caid", "epoch", "lat", "lng", None]),
        (
            ["User", "Date Time", "Latitude", "Longitude", "Horizontal-Accuracy"],
            ["User", "Date Time", "Latitude", "Longitude", "Horizontal-Accuracy"],
        ),
        (["uid", "ts", "y", "x", "hacc", "time"], ["uid", "ts", "y", "x", "hacc"]),
    ],
)
def test_auto_detection(header, expected):
    got = resolve(header, PINGS, {})
    assert [got.get(r) for r in PINGS.all] == expected


def test_precedence_and_errors(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('[columns]\nid = "who"\ntime = "when"\n[options]\ntz = "UTC"\n')
    config = load_config(conf)
    header = ["who", "when", "other_time", "lat", "lon"]
    assert resolve(header, PINGS, {}, config)["time"] == "when"
    assert resolve(header, PINGS, {"time": "other_time"}, config)["time"] == "other_time"
    assert config.options == {"tz": "UTC"}
    with pytest.raises(UsageError, match="no column 'nope'"):
        resolve(header, PINGS, {"id": "nope"})
    with pytest.raises(UsageError, match="the id column") as e:
        resolve(["a", "b", "lat", "lon"], PINGS, {"time": "b"}, source="x.csv")
    assert "x.csv" in str(e.value) and "'a'" in str(e.value)
    conf.write_text("[columns]\nbogus = 'x'\n")
    with pytest.raises(UsageError, match="unknown role"):
        load_config(conf)
    conf.write_text("not toml [")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(conf)
