"""gateway/signing.py: canonical bytes, sign and verify, key ids, key files. Pure, no services."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway import contract, signing
from gateway.contract import Action, Command, CommandResult

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
T0 = datetime(2026, 11, 29, 3, 0, 5, 123456, tzinfo=UTC)


def command(**changes: object) -> Command:
    data: dict[str, object] = {"id": "c-1", "device": "plug-f3-s001", "action": Action.RELAY_OFF,
                               "reason": "elec.plug_overcurrent critical 过载", "issued_at": T0,
                               "expires_at": T0 + timedelta(seconds=30)}
    return Command.model_validate({**data, **changes})


def test_every_command_field_but_the_signature_is_signed() -> None:
    # A field added to Command must be added to SIGNED_FIELDS (or it could be changed in transit).
    assert set(Command.model_fields) - {"sig"} == set(signing.SIGNED_FIELDS)


def test_canonical_form_is_the_fields_as_the_wire_carries_them_in_a_fixed_order() -> None:
    raw = signing.canonical(command())
    assert json.loads(raw) == ["floorwatch-command", 1, "c-1", "plug-f3-s001", "relay_off",
                               "elec.plug_overcurrent critical 过载", "2026-11-29T03:00:05.123Z",
                               "2026-11-29T03:00:35.123Z"]
    # Times are signed as encoded (milliseconds, UTC): the same instant in another zone signs alike.
    east = T0.astimezone(timezone(timedelta(hours=8))).replace(microsecond=123000)
    assert signing.canonical(command(issued_at=east)) == raw


def test_a_signature_survives_the_wire_whatever_the_publishers_key_order() -> None:
    sent = signing.signed(command(), KEY)  # signed with microseconds, sent with milliseconds
    assert sent.sig is not None and sent.sig.startswith(f"v1:{signing.key_id(KEY)}:")
    received = contract.decode_payload(Command, contract.encode(sent))
    assert signing.verify(received, KEY)
    shuffled = json.dumps(dict(reversed(list(json.loads(contract.encode(sent)).items())))).encode()
    assert signing.verify(contract.decode_payload(Command, shuffled), KEY)
    assert signing.refusal(received, [OTHER, KEY]) is None  # rotation: any of the edge's keys


@pytest.mark.parametrize("change", [
    {"device": "plug-f3-s002"}, {"action": Action.RELAY_ON}, {"id": "c-2"}, {"reason": "x"},
    {"issued_at": T0 + timedelta(seconds=1)}, {"expires_at": T0 + timedelta(days=1)},
])
def test_any_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    sig = signing.sign(command(), KEY)
    tampered = command(**change, sig=sig)
    assert not signing.verify(tampered, KEY)
    assert signing.refusal(tampered, [KEY]) == f"signature does not match the command (key {signing.key_id(KEY)})"


def test_refusals_name_what_is_wrong_and_never_the_key() -> None:
    assert signing.refusal(command(), [KEY]) == "no signature"
    assert signing.refusal(command(sig="v1:abc:00"), [KEY]) == "malformed signature"
    assert signing.refusal(command(sig="hmac:" + "0" * 64), [KEY]) == "malformed signature"
    other = signing.signed(command(), OTHER)
    why = signing.refusal(other, [KEY])
    assert why == f"signed with key {signing.key_id(OTHER)}, which is not this edge's key"
    assert KEY.hex() not in why and OTHER.hex() not in why
    assert not signing.verify(other, KEY)
    # The right key id with a forged digest.
    forged = command(sig=f"v1:{signing.key_id(KEY)}:{'0' * 64}")
    assert not signing.verify(forged, KEY)


def test_key_ids_differ_per_key_and_keys_round_trip_through_their_file_form() -> None:
    keys = [secrets.token_bytes(signing.KEY_BYTES) for _ in range(50)]
    assert len({signing.key_id(k) for k in keys}) == 50
    assert all(signing.parse_key(signing.format_key(k)) == k for k in keys)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        signing.parse_key("00" * 16)
    with pytest.raises(ValueError, match="hexadecimal"):
        signing.parse_key("not a key")


def test_an_old_edge_ignores_the_signature_field() -> None:
    # Additive within v1: the field is optional, and absent from an unsigned command's bytes.
    assert b"sig" not in contract.encode(command())
    assert contract.decode_payload(Command, contract.encode(signing.signed(command(), KEY))).sig is not None


def test_every_result_field_but_the_signature_is_signed() -> None:
    assert set(CommandResult.model_fields) - {"sig"} == set(signing.RESULT_FIELDS)


def test_a_signed_result_verifies_and_any_change_breaks_it() -> None:
    key = secrets.token_bytes(32)
    result = signing.signed(CommandResult(id="c-1", ok=True, ts=T0, device="plug-f3-s001",
                                          reported={"relay_on": False, "power_w": 0.0}), key)
    assert signing.verify(result, key)
    reordered = contract.decode_payload(CommandResult, json.dumps(  # key order on the wire does not matter
        {**json.loads(contract.encode(result)), "reported": {"power_w": 0.0, "relay_on": False}}).encode())
    assert signing.verify(reordered, key)
    for change in ({"ok": False}, {"error": "x"}, {"reported": {"relay_on": True, "power_w": 0.0}}, {"id": "c-2"}):
        assert not signing.verify(result.model_copy(update=change), key), change
    # a command's signature is no result's: the contexts differ even where the fields would agree
    assert signing.canonical(result).startswith(b'["floorwatch-command-result"')
