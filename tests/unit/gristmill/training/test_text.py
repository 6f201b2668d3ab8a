"""Free text: detection, the two encoders, the embedding cache, the neural trainers end to end
through training, the MLflow registry and back (raw rows with text in, predictions out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gristmill.spec import parse_spec
from gristmill.training import text
from gristmill.training.train import CHAMPION, configure_mlflow, train

GOOD = ["delicious", "fresh", "wonderful", "tasty", "great", "lovely", "perfect", "crispy"]
BAD = ["stale", "awful", "bland", "soggy", "terrible", "rancid", "burnt", "disgusting"]
FILLER = ["the", "snack", "arrived", "today", "and", "honestly", "it", "was", "quite", "my", "kids", "said"]


def _reviews(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    texts = []
    for label in labels:
        words = list(rng.choice(FILLER, 8)) + list(rng.choice(GOOD if label else BAD, 2))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
    return texts, labels


def test_long_distinct_strings_are_text_and_labels_are_not():
    texts, _ = _reviews(60)
    frame = pd.DataFrame({"review": texts, "plan": ["a long plan name with many words in it"] * 30
                          + ["another long plan name with many words"] * 30,
                          "city": ["Oslo", "Rome"] * 30, "n": np.arange(60)})
    assert text.detect_text_columns(frame, ["review", "plan", "city", "n"]) == ["review"]


def test_tfidf_encoder_is_fitted_once_and_deterministic():
    texts, _ = _reviews(80)
    enc = text.TextEncoder("review", "tfidf", dims=8).fit(texts)
    first = enc.transform(texts[:5])
    assert first.shape == (5, 8) and np.isfinite(first).all()
    assert np.allclose(first, enc.transform(texts[:5]))
    assert enc.transform([None, ""]).shape == (2, 8)  # missing text is an empty string


def test_minilm_embeddings_are_cached_by_content_hash(tmp_path, monkeypatch):
    calls = []
    model = text.sentence_encoder()
    original = model.encode

    def counting(texts, **kw):
        calls.append(len(texts))
        return original(texts, **kw)

    monkeypatch.setattr(model, "encode", counting)
    monkeypatch.setattr(text, "_MEMORY", {})
    with text.cache_at(tmp_path):
        a = text.embed(["a cold soup", "a warm soup", "a cold soup"])
        b = text.embed(["a warm soup"])
    assert a.shape == (3, 384) and calls == [2]  # duplicates and repeats are encoded once
    assert np.allclose(a[1], b[0])
    assert len(list(tmp_path.glob("*.npz"))) == 1
    monkeypatch.setattr(text, "_MEMORY", {})  # a new process: the disk cache answers
    with text.cache_at(tmp_path):
        again = text.embed(["a cold soup"])
    assert calls == [2] and np.allclose(again[0], a[0])


def test_a_missing_extra_names_the_install_command(monkeypatch):
    import sys

    from gristmill.training import trainers
    from gristmill.training.trainers import Task

    monkeypatch.setitem(sys.modules, "rtdl_revisiting_models", None)  # import fails as if not installed
    X = pd.DataFrame({"x": np.arange(30.0)})
    with pytest.raises(text.MissingExtra, match=r"ft_transformer trainer needs .*uv sync --extra transformer"):
        trainers.get("ft_transformer").fit(trainers.get("ft_transformer").defaults, Task("regression"), X,
                                           np.arange(30.0))


def _spec(project: str, **training):
    return parse_spec({
        "project": project, "sources": [{"path": "unused"}],
        "entity": {"name": "review", "key": "review_id"}, "features": [{"table": "reviews"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"budget_seconds": 5, "max_trials": 2, "folds": 2, **training},
    }, "t.yaml")


def _dataset(ws, project: str, n: int):
    texts, labels = _reviews(n)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"review_id": [f"r{i}" for i in range(n)],
                          "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
                          "y": np.where(labels == 1, "good", "bad"), "reviews__review": texts,
                          "reviews__stars_shown": rng.normal(size=n)})
    frame.loc[3, "reviews__review"] = None
    out = ws.datasets(project)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{project}-test.parquet"
    frame.to_parquet(path, index=False)
    return f"{project}-test", path


def _served(ws, project: str, path):
    """The registered champion loaded back through MLflow, as the bento loads it."""
    import mlflow

    configure_mlflow(ws)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{project}@{CHAMPION}")
    rows = [{"reviews__review": "Honestly the snack was delicious and fresh.", "reviews__stars_shown": 0.1},
            {"reviews__review": "It arrived stale and awful, my kids said.", "reviews__stars_shown": 0.1},
            {"reviews__review": None}]
    return pyfunc, rows


def test_text_is_encoded_inside_the_model_and_ft_transformer_joins_the_ensemble(workspace):
    project = "toy_text"
    dataset_id, path = _dataset(workspace, project, 160)
    result = train(workspace, _spec(project, trainers=["linear", "ft_transformer"], text_encoder="minilm",
                                    text_dims=8, epochs=15, budget_seconds=30), dataset_id, path)
    assert result.holdout_score > 0.8 and result.n_trials == 2, result
    assert (workspace.root / "cache" / "text").is_dir()  # embeddings cached in the workspace
    pyfunc, rows = _served(workspace, project, path)
    model = pyfunc.unwrap_python_model().model
    assert model.text_columns == ["reviews__review"] and model.encoders["reviews__review"].kind == "minilm"
    table = pyfunc.predict(pd.DataFrame(rows))  # raw text in, through MLflow
    assert list(table["prediction"][:2]) == ["good", "bad"]
    pd.testing.assert_frame_equal(table.reset_index(drop=True), model.predict_table(rows))
    import mlflow

    client = mlflow.MlflowClient()
    trials = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                "tags.trainer = 'ft_transformer'")
    assert trials and client.get_metric_history(trials[0].info.run_id, "fold0_valid_loss")  # per epoch


def test_tfidf_is_the_fallback_vectoriser(workspace):
    project = "toy_tfidf"
    dataset_id, path = _dataset(workspace, project, 120)
    result = train(workspace, _spec(project, trainers=["linear"], text_encoder="tfidf", text_dims=8),
                   dataset_id, path)
    assert result.holdout_score > 0.8
    pyfunc, rows = _served(workspace, project, path)
    assert pyfunc.unwrap_python_model().model.encoders["reviews__review"].kind == "tfidf"
    assert list(pyfunc.predict(pd.DataFrame(rows))["prediction"][:2]) == ["good", "bad"]


def test_text_finetune_from_the_spec_alone_registers_a_served_model(workspace):
    """training: {trainers: [text_finetune], text_columns: [review], text_model, epochs}: no code."""
    import mlflow

    project = "toy_finetune"
    dataset_id, path = _dataset(workspace, project, 64)
    # a budget the refit fits in (else the member is kept as its fold models: test_bagging.py)
    result = train(workspace, _spec(project, trainers=["text_finetune"], text_columns=["review"],
                                    text_model="all-minilm-l6-v2", epochs=2, budget_seconds=120, max_trials=1),
                   dataset_id, path)
    pyfunc, rows = _served(workspace, project, path)
    model = pyfunc.unwrap_python_model().model
    assert model.encoders == {} and [m.trainer for m in model.members] == ["text_finetune"]
    table = pyfunc.predict(pd.DataFrame(rows))
    assert len(table) == 3 and np.allclose(table.filter(like="probability_").sum(axis=1), 1.0)
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "refit_text_finetune_train_loss")
    assert [m.step for m in history] == list(range(1, len(history) + 1)) and history


def test_a_text_column_the_table_lacks_names_the_spec_key(workspace):
    from gristmill.errors import DataError

    dataset_id, path = _dataset(workspace, "toy_nosuch", 40)
    with pytest.raises(DataError, match="training.text_columns: 'comment' is not a feature"):
        train(workspace, _spec("toy_nosuch", text_columns=["comment"]), dataset_id, path)
