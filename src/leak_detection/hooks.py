"""Project hooks: what every run does around its nodes.

The process-wide CPU settings are applied once per session (``ProcessSettingsHook``).
The main job must run right after install with nothing to fetch, so when a run
reads the default recordings folder and the demo set is not there yet, it is
generated (deterministically) before the pipeline starts. A user's own folder,
given with ``--params recordings_dir=PATH``, is never written to. The other hooks
check parameters, stores and outputs before any node runs, and keep the model
version and the mode comparison in step.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.io import DatasetError
from kedro.io.core import get_protocol_and_path

from leak_detection.audio.remote import is_remote
from leak_detection.demo.recordings import demo_is_complete, generate_demo_recordings
from leak_detection.features.store_contract import check_store, require_trainable
from leak_detection.parameters import parameters_read, validate_parameters
from leak_detection.pipelines.mode_comparison.nodes import MODES, compare_modes, stale_report
from leak_detection.runs.process_settings import apply_process_settings

logger = logging.getLogger(__name__)


class ProcessSettingsHook:
    """Apply the process-wide CPU settings (``leak_detection.runs.process_settings``) once per session.

    After the context is made rather than before a run, so a notebook's session
    computes at the speed of ``kedro run`` too.
    """

    @hook_impl
    def after_context_created(self) -> None:
        apply_process_settings()


class DemoRecordingsHook:
    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if "recordings" not in pipeline.inputs():
            return
        demo = dict(catalog.load("parameters").get("demo_recordings") or {})
        demo_dir = Path(run_params["project_path"]) / demo.pop("path")
        recordings_dir = catalog["recordings"].path
        remote = is_remote(str(recordings_dir))
        if remote or Path(recordings_dir).resolve() != demo_dir.resolve() or demo_is_complete(demo_dir):
            return
        logger.info("Generating the built-in demo recordings in %s (first run only)", demo_dir)
        generate_demo_recordings(demo_dir, overwrite=demo_dir.exists(), **demo)


class FeatureStoreGuardHook:
    """Refuse to overwrite a feature store the user named to train from."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        named = (run_params.get("runtime_params") or {}).get("feature_store")
        if named is None or "mel_features" not in pipeline.all_outputs():
            return
        # The catalog's dataset knows the store's protocol and credentials (a store in a bucket too).
        try:
            exists = catalog.exists("mel_features")
        except DatasetError as exc:  # out of reach: Kedro's wrapper would name the dataset's whole repr
            raise DatasetError(f"feature_store={named}: {exc.__cause__ or exc}") from exc
        # The dataset answers for a file: a local folder of that name must not be extracted into either.
        protocol, path = get_protocol_and_path(str(named))
        if exists or (protocol == "file" and Path(path).exists()):
            raise ValueError(
                f"feature_store={named} names an existing store, and this pipeline would "
                "extract features again and replace it. To train from it, run "
                "`kedro run --pipelines train_from_store --params feature_store=PATH`; "
                "to extract into a new store, name a path that does not exist yet."
            )


class ModelVersionHook:
    """Write the run's save version (and the Kedro environment it trained in) into ``model_meta.json``.

    The meta is saved at the same version as the weights, but a node cannot know
    that version; stamping it here lets predictions and model cards name the model
    they used.
    """

    def __init__(self) -> None:
        self._save_version: str | None = None
        self._env: str | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        # The environment says where the settings came from: `--env tuned` trains with a study's best ones.
        self._env = context.env

    @hook_impl
    def after_catalog_created(self, save_version: str) -> None:
        self._save_version = save_version

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name.endswith("model_meta") and isinstance(data, dict):
            data["model_version"] = self._save_version
            if self._env and "adaptation" not in data:
                data["kedro_env"] = self._env


class ParameterCheckHook:
    """Stop a run with bad or unread parameters before any node runs (see ``leak_detection.parameters``)."""

    @hook_impl
    def after_context_created(self, context) -> None:
        read = parameters_read(pipelines.values(), context.config_loader.conf_source)
        validate_parameters(context.params, read)


class ModeComparisonHook:
    """Keep ``mode_comparison`` in step with the latest evaluation of both modes.

    A run of one branch (``--namespaces binary``) re-evaluates one mode without the
    comparison node; the report would then describe a model that is no longer the
    latest. After such a run the comparison is made again from both modes' latest
    metrics and predictions; when the other mode has none yet, the old report is kept
    and marked stale.
    """

    def __init__(self) -> None:
        self._saved: set[str] = set()

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._saved = set()

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        self._saved.add(dataset_name)

    @hook_impl
    def after_pipeline_run(self, catalog) -> None:
        evaluated = [m for m in MODES if f"{m}.evaluation_metrics" in self._saved]
        if not evaluated or "mode_comparison" in self._saved:
            return
        try:
            inputs = [catalog.load(f"{m}.{name}") for name in ("evaluation_metrics", "file_predictions") for m in MODES]
            comparison, report = compare_modes(*inputs, catalog.load("params:mode_comparison.bootstrap"))
        except (DatasetError, ValueError) as exc:
            reason = f"{', '.join(evaluated)} was re-evaluated alone and the comparison cannot be made again: {exc}"
            logger.warning("mode_comparison is stale: %s", reason)
            if catalog.exists("mode_comparison") and catalog.exists("mode_comparison_report"):
                old = catalog.load("mode_comparison")
                comparison, report = stale_report(old, catalog.load("mode_comparison_report"), reason)
            else:
                return
        catalog.save("mode_comparison", comparison)
        catalog.save("mode_comparison_report", report)
        logger.info("mode_comparison updated after %s was re-evaluated", ", ".join(evaluated))


class StoreContractHook:
    """Check the feature store a run reads before any node runs (``leak_detection.features.store_contract``).

    A store built elsewhere used to train for minutes and then fail in the plots; now
    a store that cannot be trained from stops the run at once, naming every problem,
    and one line says what else the store can serve.
    """

    @hook_impl
    def before_pipeline_run(self, pipeline, catalog) -> None:
        if "mel_features" not in pipeline.inputs():
            return
        path = str(getattr(catalog["mel_features"], "_filepath", "mel_features"))
        mapping = catalog.load("params:label_mapping") if catalog.exists("params:label_mapping") else {}
        uses = require_trainable(check_store(catalog.load("mel_features"), path, mapping))
        (logger.info if uses.has_time_axis and uses.front_end_reproducible else logger.warning)("%s", uses.summary())
