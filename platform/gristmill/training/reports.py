"""What a training reports beside its model: the ensemble's summary, the leaderboard and holdout
plots as MLflow artifacts, the evaluation report, the holdout's fingerprint and the current
champion's score on the same holdout (for the promotion gate)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from gristmill.features.naming import TIMESTAMP
from gristmill.training import registry
from gristmill.training.model import TabularModel
from gristmill.workspace import Workspace

log = logging.getLogger(__name__)


def ensemble_summary(chosen, weights: dict[int, float], bags: dict[int, list]) -> list[dict]:
    """One entry per chosen trial: trainer, weight and, for a member kept as its fold models, how many."""
    return [{"trainer": c.trainer, "weight": round(weights[c.number], 4),
             **({"bag": len(bags[c.number])} if bags.get(c.number) else {})}
            for c in sorted(chosen, key=lambda c: weights[c.number], reverse=True)]


def calibration_label(calibrated: dict | None) -> str:
    if not calibrated:
        return "none"
    if calibrated["method"] == "temperature":
        return f"temperature {calibrated['temperature']:.3f}"
    return calibrated["method"]


def leaderboard(study, weights: dict[int, float], metric: str):
    import pandas as pd

    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "trainer": t.params.get("trainer"), "state": t.state.name.lower(),
                     f"cv_{metric}": t.value, "seconds": t.user_attrs.get("seconds"),
                     "rounds": t.user_attrs.get("rounds"), "ensemble_weight": weights.get(t.number, 0.0)})
    board = pd.DataFrame(rows)
    return board.sort_values(f"cv_{metric}", ascending=False, na_position="last") if len(board) else board


def log_reports(model: TabularModel, holdout_scores, y_holdout, leaderboard) -> None:
    """Leaderboard (CSV + HTML) and holdout plots as MLflow artifacts of the training run."""
    import tempfile

    import mlflow

    from gristmill.training.plots import holdout_figures

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        leaderboard.to_csv(folder / "leaderboard.csv", index=False)
        (folder / "leaderboard.html").write_text(leaderboard.to_html(index=False, float_format="%.5f"))
        mlflow.log_artifact(str(folder / "leaderboard.csv"))
        mlflow.log_artifact(str(folder / "leaderboard.html"))
    for name, figure in holdout_figures(model, holdout_scores, y_holdout).items():
        mlflow.log_figure(figure, f"plots/{name}.png")


def evaluation_report(ws: Workspace, project: str, version: str, task: str, metric, y_holdout,
                       holdout_scores, holdout_df, cfg, checked, champion) -> dict:
    """Write the evaluation report and log it to the training run. It reads the training's results
    and never changes them: a failure here is logged and reported as ``error``, the model stands."""
    import mlflow

    from gristmill.training import evaluation

    started = time.monotonic()
    try:
        report = evaluation.evaluate(task, metric, y_holdout, holdout_scores, holdout_df.reset_index(drop=True),
                                     cfg.gate, checked, champion.score, champion.predicted, champion.note,
                                     champion.slices, seed=cfg.seed)
        paths = evaluation.write(report, ws.reports(project) / "evaluation", f"v{version}",
                                 f"{project} version {version}: evaluation on the holdout")
        for path in paths.values():
            mlflow.log_artifact(path, "evaluation")
        mlflow.log_metric("seconds_evaluation", time.monotonic() - started)
        return paths
    except Exception as exc:  # the report is an account of the training, never a reason to fail it
        log.warning("evaluation report of %s version %s not written: %s", project, version, exc)
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def holdout_rows(holdout_df, key: str, target: str) -> str:
    """A fingerprint of the holdout: its entities, timestamps and labels."""
    import hashlib

    import pandas as pd

    rows = holdout_df[[key, TIMESTAMP, target]].astype(str).sort_values([key, TIMESTAMP])
    digest = hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:32]


@dataclass
class ChampionOnHoldout:
    """The current champion against a new holdout: its score (None: not comparable, ``note`` says
    why), its predictions on the rows when it was rescored, its recorded slice scores otherwise."""

    score: float | None = None
    note: str = ""
    predicted: object = None
    slices: dict | None = None


def champion_score(project: str, model: TabularModel, metric, holdout_df, y_holdout, rows: str
                    ) -> ChampionOnHoldout:
    """The current champion's score on the new model's holdout.

    A champion whose holdout was these same rows keeps its recorded holdout score (it was refitted
    on them, so rescoring it would flatter it); one refitted on all rows of another training set is
    rescored with a note that it may have seen some of these rows."""
    import json

    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from gristmill.training.train import model_name

    try:
        tags = MlflowClient().get_model_version_by_alias(model_name(project), registry.CHAMPION).tags
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name(project)}@{registry.CHAMPION}")
    except MlflowException:
        return ChampionOnHoldout()  # no champion yet
    champion = loaded.unwrap_python_model().model
    if champion.task != model.task or [str(c) for c in champion.classes] != [str(c) for c in model.classes]:
        return ChampionOnHoldout(None, f"the champion predicts a {champion.task} task with classes "
                                 f"{champion.classes}, not comparable: promote by hand if intended")
    recorded = tags.get(f"holdout_{metric.name}")
    if tags.get("fingerprint_holdout") == rows and recorded is not None:
        slices = json.loads(tags["gate_slices"]) if tags.get("gate_slices") else None
        return ChampionOnHoldout(float(recorded), "the champion's recorded score on the same holdout rows",
                                 slices=slices)
    note = ("the champion was refitted on all rows of its training set, which may include some of this "
            "holdout: the comparison can favour it") if tags.get("refit") == "all" else ""
    try:
        predicted = champion.scores(champion.frame(holdout_df))
        return ChampionOnHoldout(metric.score(y_holdout, predicted), note, predicted)
    except Exception as exc:  # an old model that cannot read today's features is not comparable
        return ChampionOnHoldout(None, f"the champion could not be scored on the new holdout ({exc})")
