"""Many projects' models in one serving process: the gateway behind ``gristmill serve --all``.

About a hundred models in service cannot mean a hundred server processes. The gateway loads a
project's :class:`~gristmill.serving.predictor.Predictor` (champion, challenger, feature service,
prediction log) on its first request and keeps it in a least-recently-used cache bounded by
memory; every project shares one Feast store. A project's requests then behave exactly as on its
own bento: same validation, same errors, same log and metrics.

Each loaded project is charged the larger of the process's resident-set growth while it loaded
(cold loads run one at a time, so the growth is that project's) and the pickled size of its models
(after an eviction the allocator reuses freed memory and the growth reads near zero). When the sum
passes the budget (``GRISTMILL_GATEWAY_MEMORY_MB``), or the count passes
``GRISTMILL_GATEWAY_MAX_MODELS``, the least recently used projects are dropped (their prediction
logs flushed first); the most recent one always stays. Python may keep freed memory for reuse
rather than hand it back, so the budget bounds what the cache holds, not the process's RSS to the
byte.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from gristmill.config import positive_int_env
from gristmill.workspace import Workspace

DEFAULT_MEMORY_MB = 2048


def memory_budget_mb() -> int:
    """``GRISTMILL_GATEWAY_MEMORY_MB`` or the default; a bad value is a one-line mistake."""
    return positive_int_env("GRISTMILL_GATEWAY_MEMORY_MB", DEFAULT_MEMORY_MB, "megabytes")


def max_models() -> int:
    """``GRISTMILL_GATEWAY_MAX_MODELS``: at most this many projects loaded (default: no cap)."""
    return positive_int_env("GRISTMILL_GATEWAY_MAX_MODELS", 10**9, "projects")


def _model_bytes(predictor) -> int:
    import pickle

    held = [predictor.served[1]] + ([predictor.challenger[1]] if predictor.challenger else [])
    try:
        return sum(len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) for model in held)
    except Exception:  # a model that does not pickle is charged its RSS growth only
        return 0


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


@dataclass
class Loaded:
    predictor: object
    bytes: int
    load_seconds: float
    hits: int = 0


class Gateway:
    """Predictors by project, loaded on first use, evicted least-recently-used past ``memory_mb``
    or ``models``."""

    def __init__(self, ws: Workspace, memory_mb: int | None = None, models: int | None = None) -> None:
        self.ws = ws
        self.budget = (memory_mb or memory_budget_mb()) * 2**20
        self.max_models = models or max_models()
        self._cache: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()       # the cache's order and contents
        self._loading = threading.Lock()    # one cold load at a time: its RSS growth is its own
        self._store = None
        self.evictions = 0
        import gristmill.serving.predictor  # noqa: F401  (feast, mlflow: paid at start, not by a request)

        self.store()

    def store(self):
        if self._store is None:
            from gristmill.features.store import open_store

            self._store = open_store(self.ws)
        return self._store

    def predictor(self, project: str):
        """The project's predictor, loading it (and evicting others) when needed."""
        entry = self._touch(project)
        if entry is not None:
            return entry.predictor
        self.ws.require_project(project)  # a bad or unknown name: 400 / 404 naming the projects
        with self._loading:
            entry = self._touch(project)
            if entry is not None:
                return entry.predictor
            from gristmill.serving.predictor import Predictor

            before, started = _rss(), time.perf_counter()
            predictor = Predictor(self.ws, project, store=self.store())
            seconds = time.perf_counter() - started
            entry = Loaded(predictor, max(_rss() - before, _model_bytes(predictor)), seconds, 1)
            with self._lock:
                self._cache[project] = entry
                self._evict()
            return predictor

    def _touch(self, project: str) -> Loaded | None:
        with self._lock:
            entry = self._cache.get(project)
            if entry is not None:
                self._cache.move_to_end(project)
                entry.hits += 1
            return entry

    def _evict(self) -> None:
        while len(self._cache) > 1 and (len(self._cache) > self.max_models
                                        or sum(e.bytes for e in self._cache.values()) > self.budget):
            _, entry = self._cache.popitem(last=False)
            entry.predictor.close()
            self.evictions += 1

    def reload(self, project: str) -> dict:
        return self.predictor(project).reload()

    def describe(self, visible=None) -> dict:
        """What is loaded, how big, how long it took; what is servable. ``visible`` picks the
        projects the caller may see from a list of names (the totals count every project)."""
        with self._lock:
            loaded = [{"project": p, "megabytes": round(e.bytes / 2**20, 1),
                       "load_seconds": round(e.load_seconds, 3), "requests": e.hits}
                      for p, e in reversed(self._cache.items())]
        used = round(sum(e["megabytes"] for e in loaded), 1)
        projects = self.ws.projects()
        if visible is not None:
            projects = sorted(visible(projects))
            loaded = [e for e in loaded if e["project"] in projects]
        return {"projects": projects, "loaded": loaded,
                "memory_budget_mb": self.budget // 2**20,
                "max_models": self.max_models if self.max_models < 10**9 else None,
                "memory_used_mb": used, "evictions": self.evictions}
