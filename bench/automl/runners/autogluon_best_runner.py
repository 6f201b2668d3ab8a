"""AutoGluon-Tabular 1.6, ``presets="best_quality"`` (bagging and stacking), ``time_limit`` = the budget."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from autogluon_runner import main  # noqa: E402

if __name__ == "__main__":
    main(preset="best_quality", system="autogluon_best")
