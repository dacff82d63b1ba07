"""synthcurate's FiftyOne App operators. Each one calls the same Python API as the CLI.

- ``run_filter``: run or rerun a filter on the current dataset, at a chosen level or calibrated
  (``val``: the level at which 95% of the real rare val samples pass; ``retrain``: retrain the
  classifier per level, a long run that is always delegated).
- ``train_classifier``: train a classifier run (``curate train``); delegated only.
- ``compute_embeddings``: embed the dataset with a train run's network and index it
  (``curate embed``); delegated only.
- ``generate_samples``: train a generator and add synthetic samples (``curate generate``);
  delegated only.
- ``tag_selected``: mark the selected synthetic samples pass or reject by hand (a manual decision
  that later filter runs respect), or clear that decision.
- ``filter_summary``: show a filter run's method, level and counts.
- ``export_curated``: export the current view as a curated training set.
- ``delete_run``: delete a stored run and everything it wrote (``curate runs delete``).

Long operators run as FiftyOne delegated operations: the App queues them and returns at once,
and a ``fiftyone delegated launch`` worker on the same database, media folder and plugins folder
runs them, reporting progress (``fiftyone delegated list`` shows their state). Their inputs are
checked in the form (a bad field shows its error there); anything only the run itself can find
makes the operation FAILED with the same one-line message as the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import fiftyone.operators as foo
import fiftyone.operators.types as types

from curation.errors import CurateError

EXPORT_FORMATS = ("imagefolder", "fiftyone", "csv")
DEFAULT_GENERATOR = "bbdm"


def _runs(dataset, kind: str) -> list[str]:
    from curation.runs.records import list_runs

    return list_runs(dataset, kind)


def _invalid(inputs: types.Object, message: str, *, blocking: bool = False) -> types.Property:
    """A form that only shows ``message``; ``blocking``: it also refuses to run or be queued."""
    prop = inputs.view("error", types.Error(label="Cannot run", description=message))
    if blocking:
        prop.invalid, prop.error_message = True, message
    return types.Property(inputs)


def _flag(inputs: types.Object, field: str, error: Exception) -> None:
    """Show ``error`` on the form's field that it names (else on ``field``); an invalid field
    stops the operator from running or being queued."""
    named = [p for p in getattr(error, "params", ()) if inputs.get_property(p) is not None]
    prop = inputs.get_property(named[0] if named else field)
    prop.invalid = True
    prop.error_message = str(error)


def _check(inputs: types.Object, field: str, check: Callable[[], Any]) -> None:
    """Run ``check`` (a check of the Python API) and :func:`_flag` the input error it raises."""
    from brain.errors import InputError

    try:
        check()
    except InputError as error:
        _flag(inputs, field, error)


def _check_counts(inputs: types.Object, params: dict, *names: str) -> None:
    """:func:`_flag` each of the form's count fields ``names`` that is below 1."""
    for name in names:
        value = params.get(name)
        if value is not None and value < 1:
            error = CurateError(f"`{name}` must be at least 1, got {value}", params=(name,))
            _flag(inputs, name, error)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _progress(ctx, fraction: float, label: str) -> None:
    """Report a delegated operation's progress (stored on the operation, shown by the App)."""
    if ctx.delegated:
        ctx.set_progress(progress=fraction, label=label)


class _Operator(foo.Operator):
    """A synthcurate operator: a dynamic operator configured by class attributes. Long ones
    allow delegated execution (and default to it); ``allow_immediate = False`` makes them
    delegated only, so they never block the App server."""

    operator_name: ClassVar[str]
    operator_label: ClassVar[str]
    operator_description: ClassVar[str]
    allow_immediate: ClassVar[bool] = True
    allow_delegated: ClassVar[bool] = False
    # what execute returns, shown in the App: (type: "int" | "float" | "str", name, label)
    outputs: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name=self.operator_name,
            label=self.operator_label,
            description=self.operator_description,
            dynamic=True,
            allow_immediate_execution=self.allow_immediate,
            allow_delegated_execution=self.allow_delegated,
            default_choice_to_delegated=self.allow_delegated,
        )

    def resolve_run_name(self, ctx) -> str:
        """The delegated operation's label: the operator and the run it makes."""
        run = ctx.params.get("run") or ctx.params.get("key")
        return f"{self.operator_label} {run}" if run else self.operator_label

    def resolve_output(self, ctx) -> types.Property | None:
        if not self.outputs:
            return None
        outputs = types.Object()
        for kind, name, label in self.outputs:
            getattr(outputs, kind)(name, label=label)
        return types.Property(outputs)


def _level_choice(params: dict[str, Any]):
    """The level choice of the filter form (its level is read only without a calibration: the
    form hides it then)."""
    from brain.level_choice import NO_CALIBRATION, parse_level_choice

    calibrate = params.get("calibrate") or NO_CALIBRATION
    level = params.get("level") if calibrate == NO_CALIBRATION else None
    return parse_level_choice(level, calibrate)


class RunFilter(_Operator):
    operator_name = "run_filter"
    operator_label = "synthcurate: run filter"
    operator_description = "Score every synthetic sample and tag it KEY:pass or KEY:reject"
    allow_delegated = True
    outputs = (
        ("int", "n_synthetic", "Synthetic samples scored"),
        ("int", "n_pass", "Passed"),
        ("float", "level", "Level"),
    )

    def resolve_input(self, ctx) -> types.Property:
        from brain.copies import check_copy_threshold
        from brain.filters import FILTERS, RECOMMENDED, make_filter
        from brain.level_choice import CALIBRATIONS, NO_CALIBRATION, check_level_choice
        from curation.names import check_key

        inputs = types.Object()
        inputs.str("key", label="Filter key", required=True, default="filter")
        key = ctx.params.get("key")
        if key is not None:
            _check(inputs, "key", lambda: check_key(key))
        inputs.enum(
            "method",
            FILTERS.names(),
            label="Method",
            description=f"{RECOMMENDED} is recommended; umap_gmm is the study's reference",
            required=True,
            default=RECOMMENDED,
        )
        method = ctx.params.get("method") or RECOMMENDED
        inputs.enum(
            "calibrate",
            [NO_CALIBRATION, *CALIBRATIONS],
            label="Calibration",
            description="val: the level at which 95% of the real rare val samples pass; "
            "retrain: retrain the classifier per level and keep the best val F1 (long)",
            default=NO_CALIBRATION,
            view=types.RadioGroup(),
        )
        if (ctx.params.get("calibrate") or NO_CALIBRATION) == NO_CALIBRATION:
            inputs.float(
                "level",
                label="Level (empty = the method's default)",
                description=FILTERS.get(method).level_help,
                required=False,
            )
            if ctx.params.get("level") is not None:
                _check(
                    inputs,
                    "level",
                    lambda: check_level_choice(_level_choice(ctx.params), make_filter(method)),
                )
        inputs.float(
            "copy_threshold",
            label="Near-copy SSIM (empty = measured on the real rare train images)",
            description="samples this close to a real train image or their source are rejected",
            required=False,
        )
        copy_threshold = ctx.params.get("copy_threshold")
        if copy_threshold is not None:
            _check(inputs, "copy_threshold", lambda: check_copy_threshold(copy_threshold))
        inputs.bool(
            "overwrite",
            label="Replace a run of this key that used other settings",
            default=False,
            required=False,
        )
        return types.Property(inputs, view=types.View(label="Run a synthcurate filter"))

    def resolve_delegation(self, ctx) -> bool | None:
        from brain.level_choice import Retrain

        return True if ctx.params.get("calibrate") == Retrain.name else None

    def execute(self, ctx) -> dict:
        from curation.runs.filter.run import run_filter

        _progress(ctx, 0.0, f"filter {ctx.params['method']} -> {ctx.params['key']}")
        result = run_filter(
            ctx.dataset,
            method=ctx.params["method"],
            key=ctx.params["key"],
            level=_level_choice(ctx.params),
            copy_threshold=ctx.params.get("copy_threshold"),
            overwrite=bool(ctx.params.get("overwrite")),
        )
        _progress(ctx, 1.0, f"{result.n_pass} of {result.n_synthetic} passed")
        ctx.trigger("reload_dataset")
        return {"n_synthetic": result.n_synthetic, "n_pass": result.n_pass, "level": result.level}


class TrainClassifier(_Operator):
    operator_name = "train_classifier"
    operator_label = "synthcurate: train classifier"
    operator_description = "Train a ResNet classifier run on the real train split (delegated)"
    allow_immediate, allow_delegated = False, True
    outputs = (
        ("str", "run", "Run"),
        ("int", "n_train", "Training samples"),
        ("str", "summary", "Test metrics (mean+-std over seeds)"),
    )

    def resolve_input(self, ctx) -> types.Property:
        from brain.settings import TrainSettings
        from curation.names import check_run_name

        inputs = types.Object()
        inputs.str(
            "run", label="Run name (a rerun with the same settings replaces it)", required=True
        )
        defaults = TrainSettings()
        for name, required in (("epochs", True), ("size", False)):  # from the settings type
            inputs.int(
                name,
                label=name.capitalize() + ("" if required else " (empty = the dataset's policy)"),
                description=TrainSettings.help(name),
                required=required,
                default=getattr(defaults, name),
            )
        inputs.int("seeds", label="Seeds (one network each)", required=True, default=1)
        inputs.bool(
            "overwrite", label="Replace a run of this name that used other settings", default=False
        )
        params = ctx.params
        if params.get("run") is not None:
            _check(inputs, "run", lambda: check_run_name(params["run"]))
        _check_counts(inputs, params, "seeds")
        settings = {name: params.get(name) for name in ("epochs", "size")}
        if settings["epochs"] is None:
            settings.pop("epochs")
        _check(inputs, "epochs", lambda: TrainSettings().replace(**settings).check())
        return types.Property(inputs, view=types.View(label="Train a classifier"))

    def execute(self, ctx) -> dict:
        from brain.metrics import format_summary
        from curation.runs.train.fit import train_classifier

        run, epochs, seeds = ctx.params["run"], int(ctx.params["epochs"]), int(ctx.params["seeds"])
        _progress(ctx, 0.0, f"training {run}: {seeds} seed(s) x {epochs} epoch(s)")
        results = train_classifier(
            ctx.dataset,
            run,
            seeds=seeds,
            epochs=epochs,
            size=_optional_int(ctx.params.get("size")),
            overwrite=bool(ctx.params.get("overwrite")),
            progress=False,
        )
        summary = format_summary(results.summary)
        _progress(ctx, 1.0, summary)
        return {"run": run, "n_train": results.n_train, "summary": summary}


class ComputeEmbeddings(_Operator):
    operator_name = "compute_embeddings"
    operator_label = "synthcurate: compute embeddings"
    operator_description = "Embed every sample with a train run's network and index them"
    allow_immediate, allow_delegated = False, True
    outputs = (
        ("int", "n", "Samples embedded"),
        ("int", "dim", "Dimensions"),
        ("str", "field", "Field"),
    )

    def resolve_input(self, ctx) -> types.Property:
        from curation.runs.records import latest_run

        inputs = types.Object()
        runs = _runs(ctx.dataset, "train")
        if not runs:
            message = "No train run on this dataset: train a classifier first."
            return _invalid(inputs, message, blocking=True)
        inputs.enum(
            "run",
            runs,
            label="Train run whose network embeds",
            description="the embed run, field emb_RUN and index sim_RUN take its name",
            required=True,
            default=latest_run(ctx.dataset, "train"),
        )
        return types.Property(inputs, view=types.View(label="Compute embeddings"))

    def execute(self, ctx) -> dict:
        from curation.runs.embed.compute import compute_embeddings

        run = ctx.params["run"]
        _progress(ctx, 0.0, f"embedding with {run}")
        results = compute_embeddings(ctx.dataset, run, progress=False)
        _progress(ctx, 1.0, f"{results.n} samples in {results.dim} dimensions")
        return {"n": results.n, "dim": results.dim, "field": results.field}


class GenerateSamples(_Operator):
    operator_name = "generate_samples"
    operator_label = "synthcurate: generate samples"
    operator_description = "Train a generator and add synthetic rare-class samples (delegated)"
    allow_immediate, allow_delegated = False, True
    outputs = (
        ("str", "run", "Run"),
        ("int", "added", "Samples added"),
        ("int", "total", "Samples in the run"),
        ("str", "warnings", "Warnings"),
    )

    def resolve_input(self, ctx) -> types.Property:
        from curation.names import check_run_name
        from generators import GENERATORS

        names = GENERATORS.names()
        inputs = types.Object()
        inputs.enum(
            "method",
            names,
            label="Generator",
            required=True,
            default=DEFAULT_GENERATOR if DEFAULT_GENERATOR in names else names[0],
        )
        method = ctx.params.get("method") or inputs.get_property("method").default
        inputs.str("run", label="Run name (rerunning one continues it)", required=True)
        inputs.int("n", label="Samples in the run (empty = one per source image)", required=False)
        params = ctx.params
        if params.get("run") is not None:
            _check(inputs, "run", lambda: check_run_name(params["run"]))
        _check_counts(inputs, params, "n")
        if GENERATORS.get(method).trains:
            inputs.int("train_steps", label="Training steps (empty = the method's)", required=False)
            _check_counts(inputs, params, "train_steps")
        return types.Property(inputs, view=types.View(label="Generate synthetic samples"))

    def execute(self, ctx) -> dict:
        from curation.runs.generate.run import generate

        method, run = ctx.params["method"], ctx.params["run"]
        _progress(ctx, 0.0, f"{method} {run}: training or loading the generator, then sampling")
        report = generate(
            ctx.dataset,
            method,
            run,
            n=_optional_int(ctx.params.get("n")),
            train_steps=_optional_int(ctx.params.get("train_steps")),
            progress=False,
        )
        _progress(ctx, 1.0, f"added {report.added} ({report.total} in the run)")
        return {
            "run": run,
            "added": report.added,
            "total": report.total,
            "warnings": "; ".join(report.warnings),
        }


class TagSelected(_Operator):
    operator_name = "tag_selected"
    operator_label = "synthcurate: tag selected pass/reject"
    operator_description = "Overrule the filter for the selected synthetic samples"
    outputs = (
        ("int", "changed", "Samples changed"),
        ("str", "decision", "Decision"),
    )

    def resolve_input(self, ctx) -> types.Property:
        inputs = types.Object()
        if not ctx.selected:
            return _invalid(inputs, "Select one or more synthetic samples in the grid first.")
        inputs.enum(
            "decision",
            ["pass", "reject", "clear"],
            label=f"Decision for {len(ctx.selected)} selected sample(s)",
            required=True,
            default="pass",
            view=types.RadioGroup(),
        )
        return types.Property(inputs, view=types.View(label="Tag selected samples"))

    def execute(self, ctx) -> dict:
        from curation.tags import set_manual_decision

        decision = ctx.params.get("decision", "pass")
        if not ctx.selected:
            raise CurateError("no samples selected")
        changed = set_manual_decision(
            ctx.dataset, ctx.selected, None if decision == "clear" else decision
        )
        ctx.trigger("reload_dataset")
        return {"changed": changed, "decision": decision}


class FilterSummary(_Operator):
    operator_name = "filter_summary"
    operator_label = "synthcurate: filter run summary"
    operator_description = "Method, level and counts of a stored filter run"
    outputs = (
        ("str", "key", "Key"),
        ("str", "method", "Method"),
        ("float", "level", "Level"),
        ("str", "level_choice", "How the level was chosen"),
        ("int", "n_synthetic", "Synthetic"),
        ("int", "n_pass", "Pass"),
        ("int", "n_reject", "Reject"),
        ("int", "n_overridden", "Overridden"),
        ("str", "reasons", "Why samples were rejected (field KEY_reason)"),
    )

    def resolve_input(self, ctx) -> types.Property:
        inputs = types.Object()
        keys = _runs(ctx.dataset, "filter")
        if not keys:
            return _invalid(inputs, "No filter run on this dataset yet: run one first.")
        inputs.enum("key", keys, label="Filter run", required=True, default=keys[-1])
        return types.Property(inputs, view=types.View(label="Filter run summary"))

    def execute(self, ctx) -> dict:
        from curation.runs.filter.run import FILTER

        config, results = FILTER.load(ctx.dataset, ctx.params["key"])
        summary = {"key": ctx.params["key"], "method": config.method}
        summary["level_choice"] = config.level_choice.describe()
        for name in ("level", "n_synthetic", "n_pass", "n_reject", "n_overridden"):
            summary[name] = getattr(results, name)
        summary["reasons"] = ", ".join(f"{reason} {n}" for reason, n in results.reasons.items())
        return summary


class ExportCurated(_Operator):
    operator_name = "export_curated"
    operator_label = "synthcurate: export current view"
    operator_description = "Write the current view as a training set"
    outputs = (
        ("str", "out", "Written to"),
        ("int", "n_samples", "Samples"),
    )

    def resolve_input(self, ctx) -> types.Property:
        inputs = types.Object()
        inputs.str("out", label="Output folder (must not exist)", required=True)
        inputs.enum(
            "format", list(EXPORT_FORMATS), label="Format", required=True, default="imagefolder"
        )
        inputs.bool("overwrite", label="Replace an existing folder", default=False)
        return types.Property(inputs, view=types.View(label="Export the current view"))

    def execute(self, ctx) -> dict:
        from curation.export import export_samples

        summary = export_samples(
            ctx.view,
            ctx.params["out"],
            fmt=ctx.params.get("format", "imagefolder"),
            overwrite=bool(ctx.params.get("overwrite", False)),
        )
        return {"out": summary["out"], "n_samples": summary["n_samples"]}


class DeleteRun(_Operator):
    operator_name = "delete_run"
    operator_label = "synthcurate: delete run"
    operator_description = "Delete a stored run and every field, tag, view and file it wrote"
    outputs = (
        ("str", "key", "Deleted"),
        ("int", "fields", "Fields removed"),
        ("int", "views", "Views removed"),
        ("int", "files", "Files removed"),
    )

    def resolve_input(self, ctx) -> types.Property:
        from curation.runs import list_run_keys

        inputs = types.Object()
        keys = [key for key, _, _ in list_run_keys(ctx.dataset)]
        if not keys:
            return _invalid(inputs, "No synthcurate run on this dataset.")
        inputs.enum("key", keys, label="Run", required=True, default=keys[-1])
        inputs.bool(
            "with_dependents",
            label="Also delete the runs built on it (else such a run is refused)",
            default=False,
        )
        return types.Property(inputs, view=types.View(label="Delete a synthcurate run"))

    def execute(self, ctx) -> dict:
        from curation.runs import delete_run

        with_dependents = bool(ctx.params.get("with_dependents"))
        removed = delete_run(ctx.dataset, ctx.params["key"], with_dependents=with_dependents)
        ctx.trigger("reload_dataset")
        return {
            "key": ctx.params["key"],
            "fields": len(removed.fields),
            "views": len(removed.views),
            "files": len(removed.files),
        }


OPERATORS = (
    RunFilter,
    TrainClassifier,
    ComputeEmbeddings,
    GenerateSamples,
    TagSelected,
    FilterSummary,
    ExportCurated,
    DeleteRun,
)


def register(plugin) -> None:
    """Called by FiftyOne when it loads the plugin."""
    for operator in OPERATORS:
        plugin.register(operator)
