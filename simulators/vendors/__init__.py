"""Vendor dialects the simulated devices speak on the floor broker (contract-v1.md §2).

One module per dialect; each encoder cites the vendor documentation it was written from.
"""

from simulators.vendors.base import Publication, dumps, rfc3339_ms

VENDORS = ("shelly", "tasmota", "zigbee2mqtt", "generic")

__all__ = ["VENDORS", "Publication", "dumps", "rfc3339_ms"]
