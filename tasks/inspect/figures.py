"""Figures of study part 5: filter grids, activation maps, deep-dream images.

Each panel of a grid is its own image inside one Axes (placed with `extent`), not its own Axes:
a CNN-5 layer has 512 filters, and hundreds of Axes would take matplotlib tens of seconds to lay
out, while hundreds of small images take a second. One Axes also gives every panel of a figure
the same colour scale, shown by one colour bar.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.gridspec import GridSpec

from tasks.figures import new_figure, plt
from tasks.inspect.compute import DigitImage, DreamResult, FilterGrid

BACKGROUND = "#b0b0b0"  # between panels; neither end of any colour map used here
PANEL_INCHES = 0.55  # drawn size of one panel
# Filters drawn per layer at most: a 512-filter layer's grid, shrunk to a page, shows panels too small
# to read, so a deeper layer shows its first filters by index and its title says how many of how many.
MAX_FILTER_PANELS = 64


def grid_columns(count: int) -> int:
    """Panels per row: a power of two, about twice the rows, at most 32 (filter counts are 2^k)."""
    return max(1, min(count, 32, 2 ** math.ceil(math.log2(math.sqrt(2 * count)))))


def _gap(height: int) -> int:
    return max(1, height // 7)


def _mosaic_aspect(count: int, height: int, width: int, columns: int) -> float:
    """Height over width of the drawn grid of panels, gaps included."""
    gap, rows = _gap(height), math.ceil(count / columns)
    return (rows * (height + gap) + gap) / (columns * (width + gap) + gap)


def _draw_panels(axes, panels: np.ndarray, norm: Normalize, cmap: str, columns: int):
    """Draw `panels` (count, h, w) row by row; ticks name the filter or map index of each panel."""
    count, height, width = panels.shape
    gap = _gap(height)
    rows = math.ceil(count / columns)
    image = None
    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        left, top = column * (width + gap), row * (height + gap)
        image = axes.imshow(
            panel, cmap=cmap, norm=norm, interpolation="nearest", extent=(left, left + width, top + height, top)
        )
    axes.set_xlim(-gap, columns * (width + gap))
    axes.set_ylim(rows * (height + gap), -gap)
    axes.set_facecolor(BACKGROUND)
    step = 1 if columns <= 16 else 4
    axes.set_xticks(
        [column * (width + gap) + width / 2 for column in range(0, columns, step)],
        [str(column) for column in range(0, columns, step)],
        fontsize=7,
    )
    row_step = 1 if rows <= 16 else 4
    axes.set_yticks(
        [row * (height + gap) + height / 2 for row in range(0, rows, row_step)],
        [str(row * columns) for row in range(0, rows, row_step)],
        fontsize=7,
    )
    axes.set_xlabel("+ column offset")
    axes.set_ylabel("index of the row's first panel")
    return image


def filter_grid_figure(grid: FilterGrid, most: int = MAX_FILTER_PANELS):
    """One panel per filter of a conv layer (its first `most` by index), on a shared symmetric colour
    scale: the scale of the filters drawn."""
    kernels = grid.kernels[:most]
    shown = len(kernels)
    columns = grid_columns(shown)
    rows = math.ceil(shown / columns)
    figure, axes = new_figure(max(6.0, columns * PANEL_INCHES + 2.0), max(3.5, rows * PANEL_INCHES + 1.6))
    limit = float(np.abs(kernels).max()) or 1e-12
    image = _draw_panels(axes, kernels, Normalize(-limit, limit), "RdBu_r", columns)
    figure.colorbar(image, ax=axes, shrink=0.8, label="kernel weight (red +, blue -; shared scale)")
    kernel_h, kernel_w = kernels.shape[1:]
    count = (
        f"{grid.filter_count} filters"
        if shown == grid.filter_count
        else f"the first {shown} of its {grid.filter_count} filters (a readable subset)"
    )
    axes.set_title(
        f"{grid.layer}: {count} of {kernel_h}x{kernel_w}, panel = filter index\nshown: {grid.view}", fontsize=9
    )
    return figure


def activation_figure(layer: str, maps: np.ndarray, digit_images: list[DigitImage]):
    """Every activation map of one conv layer for each chosen image, on one shared colour scale.

    `maps` is (images, height, width, channels). Rows: one image each, its input at the left.
    """
    count, height, width, channels = maps.shape
    columns = grid_columns(channels)
    maps_width = max(3.0, columns * (0.75 if height >= 14 else 0.45))
    block_height = max(1.8, maps_width * _mosaic_aspect(channels, height, width, columns) + 1.0)
    figure = plt.figure(figsize=(maps_width + 3.6, count * block_height + 0.8))
    layout = GridSpec(count, 3, figure=figure, width_ratios=[1.6, maps_width, 0.25], wspace=0.25)
    norm = Normalize(0.0, float(maps.max()) or 1e-12)
    image = None
    for row, chosen in enumerate(digit_images):
        input_axes = figure.add_subplot(layout[row, 0])
        input_axes.imshow(chosen.image, cmap="gray", vmin=0.0, vmax=1.0)
        input_axes.set_title(
            f"input: test #{chosen.test_index}\ndigit {chosen.digit}, predicted {chosen.predicted}", fontsize=8
        )
        input_axes.set_xlabel("pixel column", fontsize=7)
        input_axes.set_ylabel("pixel row", fontsize=7)
        input_axes.tick_params(labelsize=6)
        map_axes = figure.add_subplot(layout[row, 1])
        image = _draw_panels(map_axes, np.moveaxis(maps[row], -1, 0), norm, "viridis", columns)
        map_axes.set_title(
            f"{layer} on the {chosen.digit}: {channels} maps of {height}x{width}, panel = channel index", fontsize=9
        )
    figure.colorbar(image, cax=figure.add_subplot(layout[:, 2]), label="activation (ReLU output; shared scale)")
    figure.suptitle(
        f"{layer} activation maps for a test 2 and a test 9"
        if [d.digit for d in digit_images] == [2, 9]
        else f"{layer} activation maps",
        fontsize=11,
    )
    return figure


def dream_figure(original: DigitImage, dreams: list[DreamResult], octave_steps: int):
    """The original digit, each start and its dream, the change made, and the logit along the way."""
    rows = len(dreams)
    figure = plt.figure(figsize=(10, 3.0 * rows + 3.2))
    layout = GridSpec(
        rows + 1,
        5,
        figure=figure,
        width_ratios=[1, 1, 1, 0.06, 0.06],
        height_ratios=[1] * rows + [0.9],
        wspace=0.45,
        hspace=0.55,
    )
    pixels, change = Normalize(0.0, 1.0), Normalize(-1.0, 1.0)
    pixel_image = change_image = None
    for row, dream in enumerate(dreams):
        start_axes, dream_axes, change_axes = (figure.add_subplot(layout[row, column]) for column in range(3))
        start_label = f"original: test #{original.test_index}" if dream.start == "digit" else "start: seeded noise"
        start_axes.imshow(dream.start_image, cmap="gray", norm=pixels)
        start_axes.set_title(
            f"{start_label}\nlogit {dream.score_before:.2f}, p={dream.probability_before:.3f}", fontsize=8
        )
        pixel_image = dream_axes.imshow(dream.image, cmap="gray", norm=pixels)
        dream_axes.set_title(
            f"dreamt from {dream.start}\nlogit {dream.score_after:.2f}, p={dream.probability_after:.3f}", fontsize=8
        )
        change_image = change_axes.imshow(dream.image - dream.start_image, cmap="RdBu_r", norm=change)
        change_axes.set_title("change (dream - start)", fontsize=8)
        for axes in (start_axes, dream_axes, change_axes):
            axes.set_xlabel("pixel column", fontsize=7)
            axes.set_ylabel("pixel row", fontsize=7)
            axes.tick_params(labelsize=6)
    figure.colorbar(pixel_image, cax=figure.add_subplot(layout[:rows, 3]), label="pixel value")
    figure.colorbar(change_image, cax=figure.add_subplot(layout[:rows, 4]), label="pixel change")
    history_axes = figure.add_subplot(layout[rows, :3])
    for dream in dreams:
        history_axes.plot(np.arange(len(dream.score_history)), dream.score_history, label=f"from {dream.start}")
    for boundary in range(octave_steps, len(dreams[0].score_history) - 1, octave_steps):
        history_axes.axvline(boundary, color="grey", lw=0.8, ls="--")
    history_axes.set_title("class logit during the ascent, without jitter (dashed: next octave)", fontsize=9)
    history_axes.set_xlabel("gradient-ascent steps taken")
    history_axes.set_ylabel(f"logit of class {original.digit}")
    history_axes.legend(title="start", fontsize=8)
    figure.suptitle(f"Deep dream for class {original.digit}: gradient ascent on its pre-softmax score", fontsize=11)
    return figure
