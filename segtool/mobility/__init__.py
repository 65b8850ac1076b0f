"""Pings → stays → homes → groups → H3 visits, vectorised over all devices."""
