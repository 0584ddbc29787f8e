"""Device dialects: one module per vendor, each a `Driver` (see base.py)."""

from __future__ import annotations

from collections.abc import Iterable

from edge.config import DeviceConfig, Vendor
from edge.drivers.base import CONFIRMATION, DecodeError, Driver, Item, UnsupportedCommand
from edge.drivers.esprfid import EspRfidDriver
from edge.drivers.generic import GenericDriver
from edge.drivers.shelly import ShellyDriver
from edge.drivers.tasmota import TasmotaDriver
from edge.drivers.zigbee2mqtt import Zigbee2MqttDriver

DRIVERS: dict[Vendor, type[Driver]] = {
    Vendor.SHELLY: ShellyDriver,
    Vendor.TASMOTA: TasmotaDriver,
    Vendor.ZIGBEE2MQTT: Zigbee2MqttDriver,
    Vendor.GENERIC: GenericDriver,
    Vendor.ESP_RFID: EspRfidDriver,
}


def build_drivers(
    devices: Iterable[DeviceConfig], client_id: str = "floorwatch-edge", discover: bool = False
) -> dict[Vendor, Driver]:
    """One driver per vendor that has configured devices; with `discover`, one for every vendor, so
    that a device of a dialect this floor has none of is seen too when it announces itself."""
    devices = list(devices)
    vendors = set(DRIVERS) if discover else {d.vendor for d in devices}
    drivers = {vendor: DRIVERS[vendor](devices, client_id=client_id) for vendor in DRIVERS if vendor in vendors}
    for driver in drivers.values():
        driver.discover = discover
    return drivers


__all__ = [
    "CONFIRMATION", "DRIVERS", "DecodeError", "Driver", "EspRfidDriver", "GenericDriver", "Item", "ShellyDriver",
    "TasmotaDriver", "UnsupportedCommand", "Zigbee2MqttDriver", "build_drivers",
]
