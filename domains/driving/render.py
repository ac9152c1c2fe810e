"""Top-down frames of a highway-env road with exact vehicle boxes and a road mask.

Everything is drawn with highway-env's own pygame graphics (`WorldSurface`,
`LaneGraphics`, `RoadGraphics`) on an offscreen surface, so the boxes and the mask use
the very world-to-pixel transform that draws the picture: `pix = int((world - origin) *
scaling)`, with `origin` set by `move_display_window_to` from the window centre and the
centring fractions.

Two departures from the env's stock `EnvViewer`, both for the labels' sake:
- the stock viewer fills the whole picture with road grey, so road and off-road look the
  same; here the ground is filled with a verge colour and each lane's ground is drawn in
  road grey with `LaneGraphics.draw_ground`, the polygon the mask is made from;
- no `pygame.display` is opened, so nothing depends on `SDL_VIDEODRIVER` (the stock
  viewer returns black frames when it is `dummy`).

The mask is drawn by the same calls on a second surface (0 background, 1 road, 2 lane
marking). It is amodal: road under a vehicle stays road, as the road geometry says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
from highway_env.road.graphics import LaneGraphics, RoadGraphics, WorldSurface  # noqa: E402

ROAD_GREY = WorldSurface.GREY
MASK_BACKGROUND, MASK_ROAD, MASK_LANE = 0, 1, 2
MASK_NAMES = ("background", "road", "lane_marking")

# The renderer draws headings under 2 degrees as 0 (VehicleGraphics.display); boxes follow.
_MIN_DRAWN_HEADING = 2 * np.pi / 180


@dataclass(frozen=True)
class View:
    """Where the camera looks: picture size (px), zoom (px per metre), window placement.

    `centre` is the world point (m) shown at fraction `centering` of the width and height.
    """

    width: int
    height: int
    scaling: float
    centre: tuple[float, float]
    centering: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True)
class Frame:
    """One rendered frame: `image` (H, W, 3) uint8, `mask` (H, W) uint8, `boxes` (N, 4)
    float32 xyxy in pixels clipped to the picture, and `truncated` (N,) bool, True where
    clipping cut a box."""

    image: np.ndarray
    mask: np.ndarray
    boxes: np.ndarray
    truncated: np.ndarray


def _surface(view: View) -> WorldSurface:
    size = (view.width, view.height)
    surface = WorldSurface(size, 0, pygame.Surface(size))
    surface.scaling = float(view.scaling)
    surface.centering_position = list(view.centering)
    surface.move_display_window_to(np.asarray(view.centre, dtype=float))
    return surface


def _lanes(road):
    graph = road.network.graph
    for start in graph:
        for end in graph[start]:
            yield from graph[start][end]


def _draw_road(road, surface: WorldSurface, ground, road_colour) -> None:
    surface.fill(ground)
    for lane in _lanes(road):
        # draw_ground spans +-width either side of the centre line: half the lane each way.
        LaneGraphics.draw_ground(lane, surface, road_colour, lane.width_at(0) / 2)
    for lane in _lanes(road):
        LaneGraphics.display(lane, surface)  # markings in WorldSurface.WHITE


def _pixels(surface: WorldSurface) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(pygame.surfarray.array3d(surface), 0, 1))


def _drawn_corners(surface: WorldSurface, length: float, width: float) -> np.ndarray:
    """Corners (4, 2) of the body rectangle VehicleGraphics draws, relative to the
    vehicle's pixel centre: a pix(length) x pix(width) rectangle inset pix(1) (the tyre
    margin) in a pix(length + 2) square sprite that is rotated about its centre."""
    pix = surface.pix
    sprite = pix(length + 2)
    x0 = pix(1) - sprite / 2
    y0 = pix((length + 2) / 2 - width / 2) - sprite / 2
    x1, y1 = x0 + pix(length), y0 + pix(width)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def vehicle_boxes(road, surface: WorldSurface) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned xyxy pixel boxes (clipped) of the vehicles the renderer draws.

    Each vehicle's body rectangle (LENGTH x WIDTH at the renderer's integer pixel sizes)
    is turned by its heading about the integer pixel `vec2pix` gives, as the renderer
    draws it; a box is the turned corners' extent, in pixel-edge coordinates (a box
    [0, 0, 2, 2] covers pixels 0 and 1). Vehicles the renderer skips
    (`is_visible`) or that fall wholly outside the picture are dropped.
    """
    width, height = surface.get_width(), surface.get_height()
    boxes, truncated = [], []
    for vehicle in road.vehicles:
        if not surface.is_visible(vehicle.position):
            continue
        heading = vehicle.heading if abs(vehicle.heading) > _MIN_DRAWN_HEADING else 0.0
        cx, cy = surface.vec2pix(vehicle.position)
        corners = _drawn_corners(surface, vehicle.LENGTH, vehicle.WIDTH)
        cos, sin = np.cos(heading), np.sin(heading)
        turned = corners @ np.array([[cos, sin], [-sin, cos]])
        box = np.array(
            [cx + turned[:, 0].min(), cy + turned[:, 1].min()]
            + [cx + turned[:, 0].max(), cy + turned[:, 1].max()]
        )
        clipped = np.clip(box, [0, 0, 0, 0], [width, height, width, height])
        if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
            continue
        boxes.append(clipped)
        truncated.append(bool(np.any(clipped != box)))
    return (
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(truncated, bool),
    )


def render(road, view: View, ground=(70, 110, 55)) -> Frame:
    """Draw `road` (a highway-env `Road`) as seen by `view`: picture, mask and boxes."""
    surface = _surface(view)
    _draw_road(road, surface, ground, ROAD_GREY)
    RoadGraphics.display_traffic(road, surface, offscreen=True)
    image = _pixels(surface)

    mask_surface = _surface(view)
    _draw_road(road, mask_surface, (0, 0, 0), (MASK_ROAD,) * 3)
    drawn = _pixels(mask_surface)[..., 0]
    mask = np.where(drawn == WorldSurface.WHITE[0], MASK_LANE, drawn).astype(np.uint8)

    boxes, truncated = vehicle_boxes(road, surface)
    return Frame(image=image, mask=mask, boxes=boxes, truncated=truncated)
