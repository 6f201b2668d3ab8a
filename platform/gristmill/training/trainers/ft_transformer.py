"""FT-Transformer (Gorishniy et al., 2021) from ``rtdl-revisiting-models`` on the CPU build of torch.

Every number is quantile-normalised and embedded linearly, every category gets a learnt embedding
(with a code for missing and unseen levels), a [CLS] token reads them all through ``n_blocks``
transformer blocks. AdamW, early stopping on the validation loss (the best epoch's weights are
kept, its number is ``rounds`` for the refit), fixed seeds, ``task.threads`` torch threads. Needs
the ``transformer`` extra. Search space after the paper's, narrowed for 2 CPU cores.
"""

from __future__ import annotations

from gristmill.training.text import require
from gristmill.training.trainers.base import Fitted, Task, Trainer
from gristmill.training.trainers.neural import (MAX_EPOCHS, TabularPrep, fit_epochs, loss_of, out_dim, scores_of,
                                                target_scale, torch_for)

WHAT = "the ft_transformer trainer"


class FTTransformerTrainer(Trainer):
    name = "ft_transformer"
    early_stopping = True
    defaults = {"d_block": 64, "n_blocks": 2, "lr": 1e-3, "dropout": 0.1, "weight_decay": 1e-5}
    space = {"d_block": ("choice", [32, 64, 96, 128]), "n_blocks": ("int", 1, 3),
             "lr": ("float_log", 1e-4, 3e-3), "dropout": ("float", 0.0, 0.3),
             "weight_decay": ("float_log", 1e-6, 1e-3)}
    quick_params = {"d_block": 32, "n_blocks": 1}
    batch_size = 128

    def _network(self, params: dict, task: Task, prep: TabularPrep):
        from rtdl_revisiting_models import FTTransformer

        dropout = float(params["dropout"])
        return FTTransformer(
            n_cont_features=prep.n_numbers, cat_cardinalities=prep.cardinalities, d_out=out_dim(task),
            n_blocks=int(params["n_blocks"]), d_block=int(params["d_block"]), attention_n_heads=8,
            attention_dropout=dropout, ffn_d_hidden=None, ffn_d_hidden_multiplier=4 / 3,
            ffn_dropout=dropout / 2, residual_dropout=0.0)

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        import numpy as np

        torch = torch_for(WHAT, task.threads, task.seed)
        require("rtdl_revisiting_models", WHAT)
        if X_valid is None and rounds is None:  # no epoch count known: stop early on 10% of the rows
            cut = max(1, len(X) // 10)
            order = np.random.default_rng(task.seed).permutation(len(X))
            X_valid, y_valid = X.iloc[order[:cut]], np.asarray(y)[order[:cut]]
            X, y = X.iloc[order[cut:]], np.asarray(y)[order[cut:]]
            weight = None if weight is None else np.asarray(weight)[order[cut:]]
        prep = TabularPrep().fit(X, task.seed)
        scale = target_scale(task, y)
        net = self._network(params, task, prep)
        optimizer = torch.optim.AdamW(net.make_parameter_groups(), lr=float(params["lr"]),
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
                                   self.batch_size, task.seed)
        state = {"params": dict(params), "prep": prep, "scale": scale, "kind": task.kind,
                 "n_classes": task.n_classes}
        return Fitted(net, best, {"state": state, "history": history})

    def predict(self, fitted, task, X):
        import numpy as np

        torch = torch_for(WHAT, task.threads)
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
        torch = require("torch", WHAT)
        torch.save({"state": fitted.extra["state"], "weights": fitted.native.state_dict(),
                    "rounds": fitted.rounds}, folder / "ft_transformer.pt")
        return "ft_transformer.pt"

    def load(self, path):
        torch = require("torch", WHAT)
        saved = torch.load(path, weights_only=False)
        state = saved["state"]
        task = Task(state["kind"], state["n_classes"])
        net = self._network(state["params"], task, state["prep"])
        net.load_state_dict(saved["weights"])
        net.eval()
        return Fitted(net, saved["rounds"], {"state": state})
