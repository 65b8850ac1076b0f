"""The report's words: one plain-language paragraph per section, and the references.
Plain strings (escaped when the page is written); `{…}` fields are filled by the builder."""

from __future__ import annotations

INTRO = (
    "This report describes one segtool lake: what data it holds, how segregated the places "
    "where groups live are (residential segregation), how segregated the places where they "
    "spend their time are (experienced segregation, from anonymised phone visits), and which "
    "kinds of places bring groups together (land use). Every number is an aggregate over "
    "areas, hexagons (H3 cells of about 0.1 km²) or groups; no device and no raw position "
    "appears in it."
)

LAKE = (
    "Each dataset was written by a segtool command and carries a manifest with its inputs, "
    "parameters and row counts. Rows that could not be used (malformed, out of range, "
    "duplicated…) were not dropped silently: they are kept in the lake's _rejects/ folder "
    "with their reason, and counted here. Devices are keyed pseudonyms, never the original "
    "ids."
)

RESIDENTIAL = (
    "Where groups live, from the register population counts per area. The dissimilarity "
    "index D is the share of people who would have to move for every area to have the "
    "city's overall mix (0 = even, 1 = complete separation). Theil's H and the mutual "
    "information M measure how much knowing someone's area tells about their group. "
    "Isolation is the average share of one's own group in one's area. The exposure matrix "
    "reads along a row: for members of group g, the average share of each group h among "
    "the residents of their area; a dark diagonal means that groups live apart."
)

EXPERIENCED = (
    "Where groups spend their time, from the phones' visits weighted by time spent and by "
    "how many residents each phone stands for. Place segregation S of a hexagon is 0 when "
    "every group spends the same share of the time there and 1 when only one group does "
    "(Moro et al. 2021). A person's individual segregation S_i is the S of the mix of "
    "people in the places they visit, weighted by their time there. Experienced isolation "
    "(Athey et al. 2021) is the share of one's own group among the other people present in "
    "the same hexagon in the same half hour; it is set beside residential isolation, both "
    "from the register and from the phones' own homes (the like-for-like comparison). The "
    "co-presence matrix reads like the residential one, for the time people are out and "
    "about."
)

EXPERIENCED_NULL = (
    "Small samples make any place look segregated: with a few visitors, S is above 0 even "
    "if groups mix at random. The 'expected at random' column shows the value with the "
    "groups shuffled across the same phones ({null} shuffles); the excess over it is the "
    "segregation to read."
)

EXPERIENCED_NO_NULL = (
    "Small samples make any place look segregated: with a few visitors, S is above 0 even "
    "if groups mix at random. Re-run with --null N to see the value expected at random."
)

LANDUSE = (
    "Which kinds of places bring groups together. Each hexagon is labelled by its dominant "
    "land use (the category covering most of its mapped area) and described by its mix of "
    "uses (entropy: 0 = one use, 1 = all uses in equal parts) and its points of interest. "
    "The chart shows the mean S of the hexagons of each kind, weighted by the time spent "
    "there, with a 95% bootstrap interval over hexagons: kinds of places well to the left "
    "of the dashed line (all places) are where groups meet. The rank correlations say "
    "whether S tends to fall as the mix of uses or of amenities rises (negative ρ), and the "
    "regression estimates how S changes when a hexagon's area moves from the baseline "
    "category to another one, holding the mix constant. These are associations across "
    "places, not effects of changing a place."
)

PRIVACY = (
    "Places (hexagons) visited by fewer than {k} distinct devices were set aside before any "
    "index was computed and are not shown: {suppressed:,} of {total:,} places ({visits:,} "
    "visits). Histogram bins holding fewer than {k} devices are left empty ({hidden:,} "
    "device entries hidden). Device identifiers are keyed pseudonyms inside the lake and "
    "appear nowhere in this report; positions appear only as hexagons."
)

REFERENCES = [
    "Massey, D. S. & Denton, N. A. (1988). The dimensions of residential segregation. "
    "Social Forces 67(2), 281–315.",
    "Reardon, S. F. & Firebaugh, G. (2002). Measures of multigroup segregation. "
    "Sociological Methodology 32, 33–67.",
    "Elbers, B. (2023). A method for studying differences in segregation across time and "
    "space. Sociological Methods & Research 52(1), 5–42; R package segregation.",
    "Cortes, R. X., Rey, S. et al. (2020). An open-source framework for non-spatial and "
    "spatial segregation measures: the PySAL segregation module. J. Comput. Soc. Sci. 3.",
    "Moro, E., Calacci, D., Dong, X. & Pentland, A. (2021). Mobility patterns are "
    "associated with experienced income segregation in large US cities. Nature "
    "Communications 12, 4633.",
    "Athey, S., Ferguson, B., Gentzkow, M. & Schmidt, T. (2021). Estimating experienced "
    "racial segregation in US cities using large-scale GPS data. PNAS 118(46).",
    "Nilforoshan, H. et al. (2023). Human mobility networks reveal increased segregation "
    "in large cities. Nature 624, 586–592.",
    "Liao, Y., Gil, J., Yeh, S., Pereira, R. H. M. & Alessandretti, L. (2025). Socio-"
    "spatial segregation and human mobility. npj Sustainable Mobility and Transport.",
    "Frank, L. D. et al. (2004). Obesity relationships with community design, physical "
    "activity, and time spent in cars. Am. J. Prev. Med. 27(2) (land-use mix entropy).",
]
