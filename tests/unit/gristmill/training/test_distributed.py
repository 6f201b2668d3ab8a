"""One study spread over two local processes (embedded journal storage): trials of both processes
land in the study, the ensemble is chosen from all of them, helpers use their own sampler seeds."""

import optuna
from mlflow import MlflowClient

from gristmill.training import distributed
from gristmill.training.search import candidates
from gristmill.training.train import configure_mlflow, study_storage, train
from test_train import _dataset, _spec


def test_helper_refs_have_distinct_helpers():
    refs = distributed.helper_refs({"helper": 0, "seed": 42}, 3)
    assert [r["helper"] for r in refs] == [1, 2, 3]


def test_two_local_processes_share_one_study(workspace):
    dataset_id, path = _dataset(workspace, "toy_dist", "binary")
    spec = _spec("toy_dist", "binary", budget_seconds=40, max_trials=200, trainers=["lightgbm", "linear"])
    seen = []
    result = train(workspace, spec, dataset_id, path, workers=2, report=seen.append)
    configure_mlflow(workspace)
    run = MlflowClient().get_run(result.run_id)
    study = optuna.load_study(study_name=run.data.tags["optuna_study"],
                              storage=study_storage(workspace, "toy_dist"))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    pids = {t.user_attrs["gristmill_pid"] for t in complete}
    assert len(pids) == 2, pids  # this process and its helper
    assert {t.user_attrs.get("gristmill_helper") for t in complete} == {None, "1"}
    oof = next((workspace.root / "optuna" / "toy_dist").glob("oof-*"))
    assert result.n_trials == len(candidates(study, oof)) == len(complete)  # the ensemble saw all
    helper_runs = MlflowClient().search_runs([run.info.experiment_id],
                                             f"tags.mlflow.parentRunId = '{result.run_id}' and "
                                             "tags.gristmill_helper = '1'")
    assert helper_runs and all(r.info.status == "FINISHED" for r in helper_runs)
    assert any(r["message"] == "waiting for the helpers" for r in seen)
