"""Devices without a configured position are spread inside their zone's polygon, deterministically."""

from __future__ import annotations

from server.domain.floor_map import centroid, contains, device_positions, place_in_polygon

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
L_SHAPE = [(0.0, 0.0), (10.0, 0.0), (10.0, 2.0), (2.0, 2.0), (2.0, 10.0), (0.0, 10.0)]


def test_contains_and_centroid() -> None:
    assert contains(SQUARE, (5, 5)) and not contains(SQUARE, (11, 5))
    assert contains(L_SHAPE, (1, 9)) and not contains(L_SHAPE, (6, 6))
    assert centroid(SQUARE) == (5.0, 5.0)


def test_one_device_sits_in_the_middle_of_a_square() -> None:
    assert place_in_polygon(SQUARE, 1) == [(5.0, 5.0)]


def test_points_are_inside_distinct_and_stable_even_in_a_concave_zone() -> None:
    for polygon in (SQUARE, L_SHAPE, list(reversed(L_SHAPE))):
        for count in (1, 2, 5, 17, 40):
            points = place_in_polygon(polygon, count)
            assert len(points) == count
            assert len(set(points)) == count
            assert all(contains(polygon, p) for p in points)
            assert points == place_in_polygon(polygon, count)


def test_degenerate_inputs() -> None:
    assert place_in_polygon([], 3) == []
    assert place_in_polygon(SQUARE, 0) == []
    flat = [(0.0, 0.0), (5.0, 0.0), (10.0, 0.0)]
    assert place_in_polygon(flat, 2) == [centroid(flat)] * 2


def test_device_positions_keeps_configured_ones_and_places_the_rest() -> None:
    positions = device_positions(
        {"z1": SQUARE, "z2": []},
        [("a", "z1", (1.0, 1.0)), ("b", "z1", None), ("c", "z1", None), ("d", "z2", None)],
    )
    assert positions["a"] == (1.0, 1.0)
    assert positions["b"] is not None and positions["c"] is not None and positions["b"] != positions["c"]
    assert contains(SQUARE, positions["b"]) and contains(SQUARE, positions["c"])
    assert positions["d"] is None
