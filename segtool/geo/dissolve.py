"""Union only what overlaps: connected components of the overlap graph, then one union
per component, batched (no Python loop over polygons or components).

Why: a global `union_all` per land-use category rebuilds the whole layer as one geometry,
which dominated the time on large layers, although most land-use layers are (nearly)
coverages where few polygons overlap. Two polygons *overlap* here when their interiors
intersect (`intersects` and not `touches`); polygons that only share edges stay apart.
Components are found with scipy's sparse `connected_components`. Unions are computed by
`shapely.union_all(..., axis=1)` on a padded 2D array per size class (sizes grouped by
powers of two, so padding at most doubles the array): a loop over ≤ ~20 size classes.
"""

from __future__ import annotations

import numpy as np


def overlap_components(geoms: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Component label of each geometry in the graph 'interiors intersect' (restricted to
    pairs in the same `groups` value when given). Labels are 0..k-1."""
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    geoms = np.asarray(geoms, dtype=object)
    n = geoms.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    if groups is not None:
        keep &= groups[i] == groups[j]
    i, j = i[keep], j[keep]
    inner = ~shapely.touches(geoms[i], geoms[j])
    i, j = i[inner], j[inner]
    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def dissolve(geoms: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One geometry per label: the member itself for singletons, the union otherwise.

    Returns (geometries, label of each), ordered by label.
    """
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    labels = np.asarray(labels, dtype=np.int64)
    if geoms.size == 0:
        return geoms, labels
    uniq, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    out = np.empty(uniq.size, dtype=object)
    order = np.argsort(inverse, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    single = sizes == 1
    out[single] = geoms[order[starts[single]]]
    multi = np.flatnonzero(~single)
    if multi.size:
        width_class = np.ceil(np.log2(sizes[multi])).astype(np.int64)
        for w in np.unique(width_class):  # size classes: ≤ ~20 iterations
            comps = multi[width_class == w]
            width = 1 << int(w)
            table = np.full((comps.size, width), None, dtype=object)
            member_counts = sizes[comps]
            rows = np.repeat(np.arange(comps.size), member_counts)
            cols = np.arange(member_counts.sum()) - np.repeat(
                np.r_[0, np.cumsum(member_counts)[:-1]], member_counts
            )
            members = order[np.repeat(starts[comps], member_counts) + cols]
            table[rows, cols] = geoms[members]
            out[comps] = shapely.union_all(table, axis=1)
    return out, uniq
