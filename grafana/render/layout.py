"""Where each panel goes: rows flattened, repeated panels cloned, grid cells to figure
coordinates. Grafana's grid is 24 columns wide; a grid row is 30 px plus an 8 px gap."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from grafana.render.errors import RenderError
from grafana.render.interpolate import Values

COLUMNS = 24
ROW_PX, GAP_PX = 30, 8
HEADER_PX = 22  # the dashboard's title and time range above the grid


@dataclass(frozen=True)
class Grid:
    x: int
    y: int
    w: int
    h: int

    @property
    def bottom(self) -> int:
        return self.y + self.h


@dataclass(frozen=True)
class PlacedPanel:
    """A panel to draw: its JSON, its cell, and the variables it repeats on."""

    panel: dict[str, Any]
    grid: Grid
    scoped: Mapping[str, Values] = field(default_factory=dict)


def grid_of(panel: dict[str, Any]) -> Grid:
    pos = panel.get("gridPos") or {}
    try:
        grid = Grid(int(pos["x"]), int(pos["y"]), int(pos["w"]), int(pos["h"]))
    except (KeyError, TypeError, ValueError):
        raise RenderError(f"panel {panel.get('title')!r} has no valid gridPos: {pos}") from None
    if grid.x < 0 or grid.w <= 0 or grid.h <= 0 or grid.x + grid.w > COLUMNS:
        raise RenderError(f"panel {panel.get('title')!r}: gridPos {pos} is off the grid")
    return grid


def flatten(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels in dashboard order; a collapsed row's panels follow it, the row is dropped."""
    for panel in panels:
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def repeat(panel: dict[str, Any], grid: Grid, values: Values) -> list[PlacedPanel]:
    """Grafana's repeat: one clone per value; `h` fills rows of at most maxPerRow, `v`
    stacks the clones below each other."""
    name = panel["repeat"]
    if panel.get("repeatDirection", "h") == "v":
        return [PlacedPanel(panel, Grid(grid.x, grid.y + i * grid.h, grid.w, grid.h),
                            {name: (v,)}) for i, v in enumerate(values)]
    per_row = int(panel.get("maxPerRow") or 4)
    width = max(COLUMNS // len(values), COLUMNS // per_row, 1)
    columns = COLUMNS // width
    return [PlacedPanel(panel, Grid((i % columns) * width, grid.y + (i // columns) * grid.h,
                                    width, grid.h), {name: (v,)})
            for i, v in enumerate(values)]


def place(panels: list[dict[str, Any]], variables: Mapping[str, Values]) -> list[PlacedPanel]:
    """Every panel with its final cell; panels below a grown repeat move down."""
    placed: list[PlacedPanel] = []
    for panel in flatten(panels):
        grid = grid_of(panel)
        if panel.get("repeat"):
            if panel["repeat"] not in variables:
                raise RenderError(f"panel {panel.get('title')!r} repeats on unknown variable "
                                  f"{panel['repeat']!r}")
            clones = repeat(panel, grid, variables[panel["repeat"]])
        else:
            clones = [PlacedPanel(panel, grid)]
        growth = max(c.grid.bottom for c in clones) - grid.bottom
        if growth:
            placed = [p if p.grid.y < grid.bottom else _moved(p, growth) for p in placed]
        placed.extend(clones)
    return _push_down_later(placed)


def _moved(placed: PlacedPanel, rows: int) -> PlacedPanel:
    g = placed.grid
    return PlacedPanel(placed.panel, Grid(g.x, g.y + rows, g.w, g.h), placed.scoped)


def _push_down_later(placed: list[PlacedPanel]) -> list[PlacedPanel]:
    """Panels that now overlap an earlier one move down below it (Grafana's gravity
    keeps no two panels in the same cell)."""
    result: list[PlacedPanel] = []
    for item in sorted(placed, key=lambda p: (p.grid.y, p.grid.x)):
        g = item.grid
        blocker = _overlapping(g, result)
        while blocker is not None:
            g = Grid(g.x, blocker.bottom, g.w, g.h)
            blocker = _overlapping(g, result)
        result.append(PlacedPanel(item.panel, g, item.scoped))
    return result


def _overlapping(g: Grid, placed: list[PlacedPanel]) -> Grid | None:
    for other in placed:
        o = other.grid
        if g.x < o.x + o.w and o.x < g.x + g.w and g.y < o.bottom and o.y < g.bottom:
            return o
    return None


def figure_size(placed: list[PlacedPanel], width_px: int) -> tuple[int, int]:
    """Pixels of the whole dashboard at a given width (grid rows keep Grafana's height)."""
    rows = max((p.grid.bottom for p in placed), default=1)
    return width_px, HEADER_PX + rows * (ROW_PX + GAP_PX) + GAP_PX


def rectangle(grid: Grid, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, bottom, width, height) of a cell in figure fractions, gaps left around it."""
    width_px, height_px = size
    column_px = (width_px - GAP_PX) / COLUMNS
    left = GAP_PX + grid.x * column_px
    top = HEADER_PX + GAP_PX + grid.y * (ROW_PX + GAP_PX)
    w = grid.w * column_px - GAP_PX
    h = grid.h * (ROW_PX + GAP_PX) - GAP_PX
    return left / width_px, 1 - (top + h) / height_px, w / width_px, h / height_px
