"""The MQTT boundary every part of Floorwatch shares: the wire contract, the one MQTT client, the broker."""
