"""Raw inputs (pings, stays, flows, population, land use, POIs) into the lake."""
