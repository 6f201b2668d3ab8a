"""FT-Transformer (Gorishniy et al., 2021) from ``rtdl-revisiting-models`` on the CPU build of torch.

Every number is quantile-normalised and embedded linearly, every category gets a learnt embedding
(with a code for missing and unseen levels), a [CLS] token reads them all through ``n_blocks``
transformer blocks. The fit (AdamW, early stopping on the validation loss, fixed seeds,
``task.threads`` torch threads) is :class:`~gristmill.training.trainers.neural.TorchTabularTrainer`'s.
Needs the ``transformer`` extra. Search space after the paper's, narrowed for 2 CPU cores.
"""

from __future__ import annotations

from gristmill.training.trainers.base import Task
from gristmill.training.trainers.neural import TabularPrep, TorchTabularTrainer, out_dim


class FTTransformerTrainer(TorchTabularTrainer):
    name = "ft_transformer"
    requires = ("rtdl_revisiting_models",)
    defaults = {"d_block": 64, "n_blocks": 2, "lr": 1e-3, "dropout": 0.1, "weight_decay": 1e-5}
    space = {"d_block": ("choice", [32, 64, 96, 128]), "n_blocks": ("int", 1, 3),
             "lr": ("float_log", 1e-4, 3e-3), "dropout": ("float", 0.0, 0.3),
             "weight_decay": ("float_log", 1e-6, 1e-3)}
    quick_params = {"d_block": 32, "n_blocks": 1}
    batch_size = 128

    def network(self, params: dict, task: Task, prep: TabularPrep):
        from rtdl_revisiting_models import FTTransformer

        dropout = float(params["dropout"])
        return FTTransformer(
            n_cont_features=prep.n_numbers, cat_cardinalities=prep.cardinalities, d_out=out_dim(task),
            n_blocks=int(params["n_blocks"]), d_block=int(params["d_block"]), attention_n_heads=8,
            attention_dropout=dropout, ffn_d_hidden=None, ffn_d_hidden_multiplier=4 / 3,
            ffn_dropout=dropout / 2, residual_dropout=0.0)

    def parameter_groups(self, net, params):
        return net.make_parameter_groups()  # no weight decay on embeddings, norms and biases
