"""Where to draw devices that have no configured position: spread inside their zone's polygon.

Pure functions, no I/O. The placement is deterministic (same polygon and count, same points), so the
map never jumps between refreshes or between a phone and a desk screen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

Point = tuple[float, float]

MAX_GRID = 64
"""The finest grid tried before giving up and stacking the remaining devices on the centroid."""


def _sides(polygon: Sequence[Point]) -> Iterator[tuple[Point, Point]]:
    """Each side as (start, end), the last one closing the polygon."""
    return zip(polygon, [*polygon[1:], *polygon[:1]], strict=True)


def contains(polygon: Sequence[Point], point: Point) -> bool:
    """Even-odd ray casting; points exactly on an edge may land either side."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in _sides(polygon):
        if (y1 > y) != (y2 > y):
            cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < cross:
                inside = not inside
    return inside


def centroid(polygon: Sequence[Point]) -> Point:
    """The area centroid (the vertex mean for a degenerate polygon)."""
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in _sides(polygon):
        cross = x1 * y2 - x2 * y1
        area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if abs(area) < 1e-12:
        n = len(polygon)
        return (sum(p[0] for p in polygon) / n, sum(p[1] for p in polygon) / n)
    return (cx / (3 * area), cy / (3 * area))


def place_in_polygon(polygon: Sequence[Point], count: int) -> list[Point]:
    """`count` distinct points inside `polygon`, on the coarsest regular grid over its bounding box
    that has enough cell centres inside. Cells are taken evenly spread in row-major order.

    An empty polygon gives no points (the device cannot be drawn); a polygon too thin for the finest
    grid puts what does not fit on its centroid.
    """
    if count <= 0 or len(polygon) < 3:
        return []
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    left, top, width, height = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    if width <= 0 or height <= 0:
        return [centroid(polygon)] * count
    cells: list[Point] = []
    for size in range(1, MAX_GRID + 1):
        # Keep cells roughly square: more columns on a wide zone, more rows on a tall one.
        cols = max(1, round(size * (width / height) ** 0.5))
        rows = max(1, round(size * (height / width) ** 0.5))
        cells = [(left + (c + 0.5) * width / cols, top + (r + 0.5) * height / rows)
                 for r in range(rows) for c in range(cols)]
        cells = [p for p in cells if contains(polygon, p)]
        if len(cells) >= count:
            step = len(cells) / count
            return [cells[int(i * step)] for i in range(count)]
    fallback = centroid(polygon)
    return cells + [fallback] * (count - len(cells))


def device_positions(
    zones: dict[str, Sequence[Point]], devices: Sequence[tuple[str, str, Point | None]]
) -> dict[str, Point | None]:
    """Position of each device, given zone id -> polygon and (device id, zone id, configured position).

    Configured positions are kept; the others of a zone are placed by `place_in_polygon` in the
    order given. A device whose zone has no polygon gets None.
    """
    out: dict[str, Point | None] = {}
    pending: dict[str, list[str]] = {}
    for device_id, zone, position in devices:
        if position is not None:
            out[device_id] = position
        else:
            pending.setdefault(zone, []).append(device_id)
            out[device_id] = None
    for zone, ids in pending.items():
        for device_id, point in zip(ids, place_in_polygon(zones.get(zone, []), len(ids)), strict=False):
            out[device_id] = (round(point[0], 3), round(point[1], 3))
    return out
