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
)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments such as `reference` override single keys, not whole blocks.
    "merge_strategy": {"parameters": "soft"},
}
