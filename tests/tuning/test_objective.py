import optuna
import pytest
from optuna.trial import TrialState

from tests.tuning.conftest import make_objective, study_with


def test_a_trial_is_scored_by_its_models_validation_f1_and_records_its_training(tmp_path, fake_training):
    study = study_with(0.2)
    study.optimize(make_objective(tmp_path, fake_training), n_trials=1)
    trial = study.trials[0]
    assert trial.value == 0.8
    assert trial.user_attrs == {"best_epoch": 3, "epochs_run": 3, "threshold": 0.5}
    assert trial.intermediate_values == pytest.approx({1: 0.8 / 3, 2: 0.8 * 2 / 3, 3: 0.8})
    block = fake_training.blocks[0]
    assert block["dropout"] == 0.2 and block["fresh_start"] is True and block["epochs"] == 3
    assert block["checkpoint_dir"] == str(tmp_path / "trials" / "trial_0000")


def test_a_trial_below_the_median_of_earlier_ones_is_pruned_at_its_first_epoch(tmp_path, fake_training):
    study = study_with(0.1, 0.1, 0.45)
    study.optimize(make_objective(tmp_path, fake_training), n_trials=3)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert fake_training.epochs_seen == [1, 2, 3, 1, 2, 3, 1]
    assert study.trials[2].intermediate_values == {1: (1 - 0.45) / 3}


def test_pruning_compares_the_best_f1_so_far_not_one_noisy_epoch(tmp_path):
    def dips_then_recovers(block, on_epoch):
        for epoch, f1 in enumerate((0.9, 0.2, 0.95), start=1):
            on_epoch(epoch, {"val_file_leak_f1": f1})
        return {"best_file_leak_f1": 0.95}

    study = study_with(0.1, 0.1, 0.1)
    study.optimize(make_objective(tmp_path, dips_then_recovers), n_trials=3)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.trials[2].intermediate_values == {1: 0.9, 2: 0.9, 3: 0.95}


def test_trial_checkpoints_are_removed_unless_kept(tmp_path, fake_training):
    study = study_with(0.1, 0.1, 0.45)
    study.optimize(make_objective(tmp_path, fake_training), n_trials=3)
    assert not any((tmp_path / "trials").iterdir())
    kept = study_with(0.3)
    kept.optimize(make_objective(tmp_path / "kept", fake_training, keep_trial_checkpoints=True), n_trials=1)
    assert (tmp_path / "kept" / "trials" / "trial_0000" / "last.pth").exists()


def test_a_failing_trial_is_caught_by_the_study_and_the_next_one_runs(tmp_path, fake_training):
    calls = []

    def out_of_memory_once(block, on_epoch):
        calls.append(block["dropout"])
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return fake_training(block, on_epoch)

    study = study_with(0.1, 0.2)
    study.optimize(make_objective(tmp_path, out_of_memory_once), n_trials=2, catch=(RuntimeError,))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert not (tmp_path / "trials" / "trial_0000").exists()
    assert isinstance(study.best_trial, optuna.trial.FrozenTrial) and study.best_value == 0.8
