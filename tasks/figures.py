"""Figure helpers shared by every part: one style, headless rendering."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no screen on servers and workers

import matplotlib.pyplot as plt  # noqa: E402

DIGIT_COLOURS = plt.get_cmap("tab10")


def new_figure(width: float = 7.0, height: float = 5.0, **subplot_options):
    return plt.subplots(figsize=(width, height), **subplot_options)
