"""Area linkage networks and mobility homophily (Heine et al. 2021, PLOS ONE): which
neighbourhoods are tied together by the people who move between them, and do similar
neighbourhoods link more than distance explains?

- `visitation` — V_AB, weighted dwell time residents of A spend in B (`edges.py`);
- `copresence` — C_AB, time residents of A are co-present with residents of B in the same
  H3 cell and half-hour bin (leave-self-out, as the experienced exposure; `copresence.py`);
- per edge: observed, expected under independence V_A· V_·B / V_··, ratio, centroid
  distance, devices; edges with fewer than k devices suppressed and counted;
- homophily: Newman's assortativity (numeric and by attribute quartile) with a permutation
  null (`assortativity.py`); a Poisson / quasi-Poisson / NB gravity GLM with cluster
  bootstrap by origin (`gravity.py`); the same-quartile share and the quartile mixing
  matrix (`mixing.py`).

API (the CLI `segtool indices linkage` is a thin layer over it)::

    from segtool.indices.linkage import LinkageParams, from_lake, linkage
    params = LinkageParams(units="areas", attribute="median", permutations=200, bootstrap=200)
    result = linkage(from_lake(Lake("lake"), params), params)
    result.edges, result.homophily, result.mixing, result.summary
"""

from segtool.indices.linkage.assortativity import (
    categorical_assortativity,
    numeric_assortativity,
)
from segtool.indices.linkage.compute import LinkageResult, linkage
from segtool.indices.linkage.inputs import LinkageData, attribute_of, from_flows, from_lake
from segtool.indices.linkage.params import LinkageParams

__all__ = [
    "LinkageData",
    "LinkageParams",
    "LinkageResult",
    "attribute_of",
    "categorical_assortativity",
    "from_flows",
    "from_lake",
    "linkage",
    "numeric_assortativity",
]
