"""Holdout plots render as PNG for every task and leave no figure open in the process."""

import io
from types import SimpleNamespace

import numpy as np
import pytest

from gristmill.training.plots import holdout_figures


@pytest.mark.parametrize("task,classes,expected", [
    ("binary", ["no", "yes"], {"roc", "confusion"}),
    ("multiclass", ["a", "b", "c"], {"confusion"}),
    ("regression", [], {"residuals"}),
])
def test_every_task_draws_its_plots_and_keeps_no_figure_open(task, classes, expected):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    n = 200
    if task == "binary":
        y = rng.integers(0, 2, n)
        scores = np.clip(y * 0.6 + rng.uniform(0, 0.4, n), 0, 1)
    elif task == "multiclass":
        y = rng.integers(0, 3, n)
        scores = np.eye(3)[y] * 0.7 + rng.uniform(0, 0.1, (n, 3))
    else:
        y = rng.normal(size=n)
        scores = y + rng.normal(scale=0.1, size=n)
    model = SimpleNamespace(task=task, classes=classes, members=[])
    open_before = len(plt.get_fignums())
    for _ in range(25):   # more than matplotlib's 20-figure warning
        figures = holdout_figures(model, scores, y)
    assert set(figures) == expected
    for figure in figures.values():
        out = io.BytesIO()
        figure.savefig(out, format="png")
        assert out.getvalue()[:8] == b"\x89PNG\r\n\x1a\n" and len(out.getvalue()) > 2000
    assert len(plt.get_fignums()) == open_before
