"""Project settings; see https://docs.kedro.org/en/stable/configure/configuration_basics/."""

from leak_detection.hooks import (
    DemoRecordingsHook,
    FeatureStoreGuardHook,
    ModeComparisonHook,
    ModelVersionHook,
    ParameterCheckHook,
    ProcessSettingsHook,
    StoreContractHook,
)
from leak_detection.run_lock_hook import PredictionsOutputHook, RunLockHook
from leak_detection.tracking.hooks import TrackingHook

HOOKS = (
    ProcessSettingsHook(),
    RunLockHook(),
    PredictionsOutputHook(),
    ParameterCheckHook(),
    DemoRecordingsHook(),
    FeatureStoreGuardHook(),
    ModelVersionHook(),
    ModeComparisonHook(),
    StoreContractHook(),
    TrackingHook(),
)

# kedro-mlflow's hook runs inside TrackingHook, which keeps tracking from ever failing a run;
# its own registration is switched off (both spellings of the distribution's name).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments such as `reference` override single keys, not whole blocks.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    # Experiment tracking's settings (conf/base/mlflow.yml), read by kedro-mlflow.
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
}
