"""A synthetic city with planted segregation: areas, population, land use, pings, truth."""
