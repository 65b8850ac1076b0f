"""Segregation indices as pure functions over long-format polars frames.

- `counts`: reading and validating tables of counts into the long (unit, group, n) frame
- `residential`: aspatial two-group and multigroup indices from (unit, group, n) counts
- `decompose`: M and H into between/within strata; local scores
- `inference`: bootstrap and permutation nulls
- `experienced`: place, individual and group exposure from visits
"""
