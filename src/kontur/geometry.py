"""Zone geometry shared by every block that asks "is this object in that zone?".

The gate's dwell rules, the verifier's zone checks and the simulated compromised worker must
agree on it exactly: a point on a zone's edge is inside (a full-frame zone contains a person
whose feet touch the bottom of the picture), and a foot point is the bottom centre of a box,
clamped to the frame. Pure Python, no numpy: the worker imports it before its sandbox.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Box", "box_iou", "foot_point", "point_in_polygon", "well_formed"]

#: A box in frame pixels: (x1, y1, x2, y2).
Box = tuple[float, float, float, float]

_EPS = 1e-9


def _on_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> bool:
    (ax, ay), (bx, by) = a, b
    cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
    if abs(cross) > _EPS:
        return False
    return (
        min(ax, bx) - _EPS <= x <= max(ax, bx) + _EPS
        and min(ay, by) - _EPS <= y <= max(ay, by) + _EPS
    )


def point_in_polygon(x: float, y: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """True when ``(x, y)`` is inside ``polygon`` or on its boundary (any simple polygon).

    Even-odd ray casting (works for non-convex polygons), with points on an edge counted as
    inside so that a full-frame zone contains the frame's border.
    """
    n = len(polygon)
    if n < 3:
        raise ValueError(f"expected a polygon of at least 3 points, got {n}")
    inside = False
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        if _on_segment(x, y, a, b):
            return True
        (ax, ay), (bx, by) = a, b
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def foot_point(
    xyxy: tuple[float, float, float, float], width: int, height: int
) -> tuple[float, float]:
    """The bottom centre of box ``xyxy`` (pixels), normalised by the frame size, in [0, 1]."""
    if width <= 0 or height <= 0:
        raise ValueError(f"expected a positive frame size, got {width}x{height}")
    x1, _, x2, y2 = xyxy
    fx = min(max((x1 + x2) / 2.0 / width, 0.0), 1.0)
    fy = min(max(y2 / height, 0.0), 1.0)
    return fx, fy


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes; 0.0 when they do not meet
    (or a box has no area)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def covered_share(
    box: tuple[float, float, float, float], by: tuple[float, float, float, float]
) -> float:
    """The share of ``box``'s area that box ``by`` covers; 0.0 when they do not meet (or
    ``box`` has no area)."""
    iw = min(by[2], box[2]) - max(by[0], box[0])
    ih = min(by[3], box[3]) - max(by[1], box[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return iw * ih / area if iw > 0 and ih > 0 and area > 0 else 0.0


def well_formed(xyxy: tuple[float, float, float, float]) -> bool:
    """True when every coordinate is finite and width, height and area are positive.

    The area test also refuses boxes so thin that width × height underflows to 0, which would
    otherwise divide by zero wherever a share of the box's area is taken.
    """
    if not all(map(math.isfinite, xyxy)):
        return False
    x1, y1, x2, y2 = xyxy
    return x2 - x1 > 0 and y2 - y1 > 0 and 0 < (x2 - x1) * (y2 - y1) < math.inf
