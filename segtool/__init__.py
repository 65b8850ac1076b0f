"""segtool — urban segregation from anonymised mobility data and land use.

The command line (`segtool --help`) is a thin layer over this package:

- `segtool.indices.residential` — residential indices from long (unit, group, n) counts
- `segtool.indices.experienced` — experienced (exposure) indices from visits
- `segtool.ingest` — raw inputs into the validated, pseudonymised Parquet lake
- `segtool.mobility` — pings → stays → homes → groups → H3 visits
- `segtool.synth` — a synthetic city with planted segregation
"""

__version__ = "0.1.0"
