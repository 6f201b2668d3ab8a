"""What the PyTorch trainers share: input preparation, the loss of each task, an epoch loop with
early stopping and per-epoch history, seeds and threads, and :class:`TorchTabularTrainer`, the fit,
prediction and saving of the tabular networks (``ft_transformer``, ``mlp``). torch is imported inside
the functions.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gristmill.training.text import require, set_torch_threads
from gristmill.training.trainers.base import Fitted, Task, Trainer, categorical_columns

PATIENCE = 8  # epochs without a better validation loss before stopping
MAX_EPOCHS = 200


def torch_for(what: str, threads: int, seed: int | None = None):
    """torch, with its thread count set and (when given) every seed fixed; an install hint if missing."""
    torch = require("torch", what)
    set_torch_threads(threads)
    if seed is not None:
        torch.manual_seed(seed)
    return torch


@dataclass
class TabularPrep:
    """Numbers -> quantile-normalised (normal output; missing -> 0 plus a missing flag); categories ->
    integer codes, with one extra code for missing and unseen levels. Fitted on the training rows."""

    numeric: list[str] = field(default_factory=list)
    categories: dict[str, list] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    quantiles_: Any = None

    def fit(self, X, seed: int) -> "TabularPrep":
        from sklearn.preprocessing import QuantileTransformer

        cats = categorical_columns(X)
        self.categories = {c: list(X[c].cat.categories) for c in cats}
        self.numeric = [c for c in X.columns if c not in cats]
        self.flagged = [c for c in self.numeric if X[c].isna().any()]
        if self.numeric:
            self.quantiles_ = QuantileTransformer(
                n_quantiles=max(2, min(1000, len(X))), output_distribution="normal", subsample=10**9,
                random_state=seed).fit(X[self.numeric].to_numpy(dtype="float64"))
        return self

    @property
    def n_numbers(self) -> int:
        return len(self.numeric) + len(self.flagged)

    @property
    def cardinalities(self) -> list[int]:
        return [len(levels) + 1 for levels in self.categories.values()]

    def numbers(self, X):
        import numpy as np

        if not self.numeric:
            return np.zeros((len(X), 0), dtype="float32")
        raw = X[self.numeric].to_numpy(dtype="float64")
        out = np.nan_to_num(self.quantiles_.transform(raw), nan=0.0)
        flags = X[self.flagged].isna().to_numpy(dtype="float64") if self.flagged else np.zeros((len(X), 0))
        return np.hstack([out, flags]).astype("float32")

    def codes(self, X):
        import numpy as np
        import pandas as pd

        cols = []
        for col, levels in self.categories.items():
            values = pd.Categorical(X[col], categories=levels).codes.astype("int64")
            cols.append(np.where(values < 0, len(levels), values))
        return np.stack(cols, axis=1) if cols else np.zeros((len(X), 0), dtype="int64")


def out_dim(task: Task) -> int:
    return task.n_classes if task.kind == "multiclass" else 1


def target_scale(task: Task, y) -> tuple[float, float]:
    import numpy as np

    if task.kind != "regression":
        return 0.0, 1.0
    y = np.asarray(y, dtype="float64")
    return float(y.mean()), float(y.std() or 1.0)


def loss_of(torch, task: Task, logits, target, weight=None):
    """Per-task loss: binary cross-entropy, cross-entropy, or squared error on the scaled target."""
    F = torch.nn.functional
    if task.kind == "binary":
        losses = F.binary_cross_entropy_with_logits(logits.squeeze(-1), target.float(), reduction="none")
    elif task.kind == "multiclass":
        losses = F.cross_entropy(logits, target.long(), reduction="none")
    else:
        losses = (logits.squeeze(-1) - target.float()) ** 2
    if weight is not None:
        return (losses * weight).sum() / weight.sum()
    return losses.mean()


def scores_of(torch, task: Task, logits, scale: tuple[float, float]):
    """Logits -> the trainers' score shape (P(positive), a probability matrix, or values)."""
    if task.kind == "binary":
        return torch.sigmoid(logits.squeeze(-1)).numpy().astype("float64")
    if task.kind == "multiclass":
        return torch.softmax(logits.double(), dim=-1).numpy()  # in float64: rows sum to 1
    return logits.squeeze(-1).numpy().astype("float64") * scale[1] + scale[0]


def fit_epochs(torch, model, optimizer, task: Task, batches: Callable, n_train: int, valid_loss: Callable | None,
               epochs: int, batch_size: int, seed: int, on_epoch: Callable | None = None):
    """Train ``model`` for up to ``epochs`` epochs of shuffled mini-batches.

    ``batches(index)`` returns the loss of the training rows at ``index``; ``valid_loss()`` the
    validation loss (None: no early stopping). With validation, training stops after
    :data:`PATIENCE` epochs without improvement and the best epoch's weights are restored; it also
    stops after the epoch in which ``task.stop()`` turns true.
    Returns (best epoch, history: one dict per epoch)."""
    generator = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, history, waited = float("inf"), epochs, None, [], 0
    for epoch in range(1, epochs + 1):
        started = time.monotonic()
        model.train()
        order = torch.randperm(n_train, generator=generator)
        total, count = 0.0, 0
        for start in range(0, n_train, batch_size):
            index = order[start:start + batch_size]
            if len(index) < 2 and n_train >= 2:  # a batch of one breaks normalisation statistics
                continue
            optimizer.zero_grad()
            loss = batches(index)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
            count += len(index)
        row = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if valid_loss is not None:
            model.eval()
            with torch.no_grad():
                row["valid_loss"] = float(valid_loss())
        row["seconds"] = round(time.monotonic() - started, 3)
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if valid_loss is None:
            if task.should_stop():  # out of time: the epochs so far are the model
                best_epoch = epoch
                break
            continue
        if row["valid_loss"] < best - 1e-6:
            best, best_epoch, waited = row["valid_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= PATIENCE:
                break
        if task.should_stop():  # out of time: keep the best epoch so far
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return best_epoch, history


class TorchTabularTrainer(Trainer):
    """A PyTorch network over :class:`TabularPrep`'s numbers and category codes: the fit, early
    stopping, prediction and saving that ``ft_transformer`` and ``mlp`` share.

    Subclasses set ``name``, ``defaults``, ``space`` and ``requires`` (modules besides torch) and
    build the network in :meth:`network`; it is called as ``net(numbers, codes)``, either of them
    None when the table has no such columns. AdamW, early stopping on the validation loss (the best
    epoch's weights are kept, its number is ``rounds`` for the refit), fixed seeds, ``task.threads``
    torch threads, a check of ``task.stop`` after every epoch."""

    early_stopping = True
    requires: tuple[str, ...] = ()
    batch_size = 128

    @property
    def what(self) -> str:
        return f"the {self.name} trainer"

    def network(self, params: dict, task: Task, prep: TabularPrep):
        raise NotImplementedError

    def parameter_groups(self, net, params: dict):
        """What AdamW optimises (all parameters, decayed alike, unless the family says otherwise)."""
        return net.parameters()

    def batch_size_for(self, rows: int) -> int:
        return self.batch_size

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        import numpy as np

        torch = torch_for(self.what, task.threads, task.seed)
        for module in self.requires:
            require(module, self.what)
        if X_valid is None and rounds is None:  # no epoch count known: stop early on 10% of the rows
            cut = max(1, len(X) // 10)
            order = np.random.default_rng(task.seed).permutation(len(X))
            X_valid, y_valid = X.iloc[order[:cut]], np.asarray(y)[order[:cut]]
            X, y = X.iloc[order[cut:]], np.asarray(y)[order[cut:]]
            weight = None if weight is None else np.asarray(weight)[order[cut:]]
        prep = TabularPrep().fit(X, task.seed)
        scale = target_scale(task, y)
        net = self.network(params, task, prep)
        optimizer = torch.optim.AdamW(self.parameter_groups(net, params), lr=float(params["lr"]),
                                      weight_decay=float(params["weight_decay"]))

        def tensors(frame, target):
            num = torch.from_numpy(prep.numbers(frame)) if prep.n_numbers else None
            cat = torch.from_numpy(prep.codes(frame)) if prep.categories else None
            t = torch.from_numpy((np.asarray(target, dtype="float64") - scale[0]) / scale[1]).float()
            return num, cat, t

        num, cat, target = tensors(X, y)
        w = None if weight is None else torch.from_numpy(np.asarray(weight, dtype="float32"))

        def batch_loss(index):
            logits = net(num[index] if num is not None else None, cat[index] if cat is not None else None)
            return loss_of(torch, task, logits, target[index], None if w is None else w[index])

        valid_loss = None
        if X_valid is not None and rounds is None:
            v_num, v_cat, v_target = tensors(X_valid, y_valid)

            def valid_loss():
                return loss_of(torch, task, net(v_num, v_cat), v_target)

        epochs = rounds or task.epochs or MAX_EPOCHS
        best, history = fit_epochs(torch, net, optimizer, task, batch_loss, len(X), valid_loss, epochs,
                                   self.batch_size_for(len(X)), task.seed)
        state = {"params": dict(params), "prep": prep, "scale": scale, "kind": task.kind,
                 "n_classes": task.n_classes}
        return Fitted(net, best, {"state": state, "history": history})

    def predict(self, fitted, task, X):
        import numpy as np

        torch = torch_for(self.what, task.threads)
        state = fitted.extra["state"]
        prep = state["prep"]
        net = fitted.native
        net.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(X), 2048):
                part = X.iloc[start:start + 2048]
                num = torch.from_numpy(prep.numbers(part)) if prep.n_numbers else None
                cat = torch.from_numpy(prep.codes(part)) if prep.categories else None
                out.append(net(num, cat))
        if not out:
            return np.zeros((0, task.n_classes) if task.kind == "multiclass" else (0,))
        return scores_of(torch, task, torch.cat(out), state["scale"])

    def save(self, fitted, folder):
        torch = require("torch", self.what)
        torch.save({"state": fitted.extra["state"], "weights": fitted.native.state_dict(),
                    "rounds": fitted.rounds}, folder / f"{self.name}.pt")
        return f"{self.name}.pt"

    def load(self, path):
        torch = require("torch", self.what)
        saved = torch.load(path, weights_only=False)
        state = saved["state"]
        task = Task(state["kind"], state["n_classes"])
        net = self.network(state["params"], task, state["prep"])
        net.load_state_dict(saved["weights"])
        net.eval()
        return Fitted(net, saved["rounds"], {"state": state})
