"""Trainers (model families) by short name: a registry that fails loudly.

``get("xgboost")`` returns the trainer; an unknown name lists the known ones; registering a name
twice is refused. Each trainer's library is imported only when it trains or predicts; the neural
trainers (``mlp``, ``ft_transformer``, ``text_finetune``) need the ``transformer`` extra (``mlp``
only its torch) and say how to install it when it is missing.
"""

from __future__ import annotations

from gristmill.errors import GristmillError
from gristmill.training.trainers.base import Fitted, Task, Trainer

_REGISTRY: dict[str, Trainer] = {}


def register(trainer: Trainer) -> Trainer:
    if trainer.name in _REGISTRY:
        raise GristmillError(f"a trainer named {trainer.name!r} is already registered")
    _REGISTRY[trainer.name] = trainer
    return trainer


def get(name: str) -> Trainer:
    if name not in _REGISTRY:
        raise GristmillError(f"no trainer {name!r} (trainers: {', '.join(names())})")
    return _REGISTRY[name]


def names() -> list[str]:
    return list(_REGISTRY)


def _register_builtin() -> None:
    from gristmill.training.trainers.catboost import CatBoostTrainer
    from gristmill.training.trainers.ft_transformer import FTTransformerTrainer
    from gristmill.training.trainers.knn import KNNTrainer
    from gristmill.training.trainers.lightgbm import LightGBMTrainer
    from gristmill.training.trainers.mlp import MLPTrainer
    from gristmill.training.trainers.sklearn import (ExtraTreesTrainer, LinearSplineTrainer, LinearTrainer,
                                                     RandomForestTrainer)
    from gristmill.training.trainers.text_finetune import TextFinetuneTrainer
    from gristmill.training.trainers.xgboost import XGBoostTrainer

    for trainer in (LightGBMTrainer(), XGBoostTrainer(), CatBoostTrainer(), LinearTrainer(),
                    RandomForestTrainer(), ExtraTreesTrainer(), LinearSplineTrainer(), KNNTrainer(), MLPTrainer(),
                    FTTransformerTrainer(), TextFinetuneTrainer()):
        register(trainer)


_register_builtin()

__all__ = ["Fitted", "Task", "Trainer", "get", "names", "register"]
