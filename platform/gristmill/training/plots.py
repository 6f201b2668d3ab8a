"""Holdout plots logged with every training: feature importance, ROC or confusion, residuals."""

from __future__ import annotations


def holdout_figures(model, scores, y_holdout) -> dict:
    """Name -> matplotlib figure of the holdout ``scores`` (what the model's ``scores`` returns) for
    the model's task, and the feature importance when a member can give it. The figures are plain
    :class:`~matplotlib.figure.Figure` objects, freed with their last reference (a worker training
    for weeks keeps none of them)."""
    import numpy as np
    from matplotlib.figure import Figure  # not pyplot: no process-wide list of open figures to leak

    def subplots(figsize):
        fig = Figure(figsize=figsize)
        return fig, fig.subplots()

    figures = {}
    scores = np.asarray(scores)
    importance = _importance(model)
    if importance:
        top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:20][::-1]
        fig, ax = subplots(figsize=(7, 0.3 * len(top) + 1.2))
        ax.barh([k for k, _ in top], [v for _, v in top])
        ax.set_title("Feature importance (gain, first boosted member)")
        fig.tight_layout()
        figures["feature_importance"] = fig
    if model.task == "binary":
        from sklearn.metrics import RocCurveDisplay

        fig, ax = subplots(figsize=(5, 5))
        RocCurveDisplay.from_predictions(y_holdout, scores, ax=ax, name="holdout")
        figures["roc"] = fig
    if model.task in ("binary", "multiclass"):
        from sklearn.metrics import ConfusionMatrixDisplay

        labels = (scores >= 0.5).astype(int) if model.task == "binary" else scores.argmax(axis=1)
        fig, ax = subplots(figsize=(5, 5))
        ConfusionMatrixDisplay.from_predictions(y_holdout, labels, ax=ax, colorbar=False,
                                                display_labels=[str(c) for c in model.classes]
                                                if len(set(y_holdout)) == len(model.classes) else None)
        figures["confusion"] = fig
    if model.task == "regression":
        fig, ax = subplots(figsize=(6, 4))
        ax.scatter(scores, y_holdout - scores, s=6, alpha=0.5)
        ax.axhline(0, color="grey", lw=1)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual - predicted")
        ax.set_title("Holdout residuals")
        figures["residuals"] = fig
    return figures


def _importance(model) -> dict[str, float]:
    for member in model.members:
        native = member.fitted.native
        if member.trainer == "lightgbm":
            return dict(zip(native.feature_name(), native.feature_importance("gain").tolist()))
        if member.trainer == "xgboost":
            return {k: float(v) for k, v in native.get_score(importance_type="gain").items()}
    return {}
