"""A small multilayer perceptron in PyTorch (CPU): a member unlike the trees for the ensemble.

Numbers are quantile-normalised (normal output, missing -> 0 plus a missing flag), each category
gets a learnt embedding (with a code for missing and unseen levels; ``embedding_size`` wide), and
``layers`` blocks of Linear -> LayerNorm -> SiLU -> dropout read them. The fit (AdamW, early
stopping on the validation loss, the best epoch kept and its number reused by the refit,
``task.threads`` torch threads, ``task.stop`` checked after each epoch) is
:class:`~gristmill.training.trainers.neural.TorchTabularTrainer`'s. Needs only torch (the
``transformer`` extra installs it); no weights are downloaded.
"""

from __future__ import annotations

from gristmill.training.trainers.base import Task
from gristmill.training.trainers.neural import TabularPrep, TorchTabularTrainer, out_dim

#: Widest category embedding (fastai's rule, 1.6 * levels ** 0.56, capped).
MAX_EMBEDDING = 16


def embedding_size(levels: int) -> int:
    """Width of the embedding of a category with ``levels`` codes."""
    return max(2, min(MAX_EMBEDDING, round(1.6 * levels ** 0.56)))


class MLPTrainer(TorchTabularTrainer):
    name = "mlp"
    defaults = {"width": 256, "layers": 2, "dropout": 0.1, "lr": 2e-3, "weight_decay": 1e-4}
    space = {"width": ("choice", [64, 128, 256, 512]), "layers": ("int", 1, 4),
             "dropout": ("float", 0.0, 0.4), "lr": ("float_log", 3e-4, 1e-2),
             "weight_decay": ("float_log", 1e-6, 1e-2)}
    quick_params = {"width": 64}

    def batch_size_for(self, rows: int) -> int:
        """Small batches on small tables (enough steps per epoch), larger ones past a few thousand
        rows (fewer, cheaper steps on 2 cores)."""
        return 64 if rows < 1000 else 128 if rows < 5000 else 256 if rows < 20000 else 512

    def network(self, params: dict, task: Task, prep: TabularPrep):
        import torch

        return _Network(torch, prep.n_numbers, prep.cardinalities, int(params["width"]), int(params["layers"]),
                        float(params["dropout"]), out_dim(task))


def _Network(torch, n_numbers: int, cardinalities: list[int], width: int, layers: int, dropout: float,
             d_out: int):
    """The network (built here so torch is imported only when an MLP is trained or loaded)."""
    nn = torch.nn

    class Network(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_size(c)) for c in cardinalities)
            blocks, d_in = [], n_numbers + sum(embedding_size(c) for c in cardinalities)
            for _ in range(layers):
                blocks += [nn.Linear(d_in, width), nn.LayerNorm(width), nn.SiLU(), nn.Dropout(dropout)]
                d_in = width
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Linear(d_in, d_out)

        def forward(self, numbers, codes):
            parts = [] if numbers is None else [numbers]
            if codes is not None:
                parts += [embed(codes[:, i]) for i, embed in enumerate(self.embeddings)]
            return self.head(self.blocks(torch.cat(parts, dim=1)))

    return Network()
