"""synthcurate's FiftyOne App operators. Each one calls the same Python API as the CLI.

- ``run_filter``: run or rerun a filter at a chosen level on the current dataset.
- ``tag_selected``: mark the selected synthetic samples pass or reject by hand (a manual decision
  that later filter runs respect), or clear that decision.
- ``filter_summary``: show a filter run's method, level and counts.
- ``export_curated``: export the current view as a curated training set.
- ``delete_run``: delete a stored run and everything it wrote (``curate runs delete``).
"""

from __future__ import annotations

from typing import ClassVar

import fiftyone.operators as foo
import fiftyone.operators.types as types

from curation.errors import CurateError

EXPORT_FORMATS = ("imagefolder", "fiftyone", "csv")


def _filter_keys(dataset) -> list[str]:
    from curation.runs.records import list_runs

    return list_runs(dataset, "filter")


def _invalid(inputs: types.Object, message: str) -> types.Property:
    inputs.view("error", types.Error(label="Cannot run", description=message))
    return types.Property(inputs)


class _Operator(foo.Operator):
    """A synthcurate operator: a dynamic operator configured by three class attributes."""

    operator_name: ClassVar[str]
    operator_label: ClassVar[str]
    operator_description: ClassVar[str]

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name=self.operator_name,
            label=self.operator_label,
            description=self.operator_description,
            dynamic=True,
        )


class RunFilter(_Operator):
    operator_name = "run_filter"
    operator_label = "synthcurate: run filter"
    operator_description = "Score every synthetic sample and tag it KEY:pass or KEY:reject"

    def resolve_input(self, ctx) -> types.Property:
        from brain.errors import InputError
        from brain.filters import FILTERS, RECOMMENDED, make_filter

        inputs = types.Object()
        inputs.str("key", label="Filter key", required=True, default="filter")
        inputs.enum(
            "method",
            FILTERS.names(),
            label="Method",
            description=f"{RECOMMENDED} is recommended; umap_gmm is the study's reference",
            required=True,
            default=RECOMMENDED,
        )
        method = ctx.params.get("method") or RECOMMENDED
        inputs.bool(
            "calibrate",
            label="Calibrate the level on the real val split",
            description="the level at which 95% of the real rare val samples pass",
            default=False,
        )
        inputs.float(
            "level",
            label="Level (empty = the method's default)",
            description=FILTERS.get(method).level_help,
            required=False,
        )
        level = ctx.params.get("level")
        if level is not None:
            try:
                make_filter(method).check_level(float(level))
            except InputError as error:
                prop = inputs.get_property("level")
                prop.invalid = True
                prop.error_message = str(error)
        return types.Property(inputs, view=types.View(label="Run a synthcurate filter"))

    def execute(self, ctx) -> dict:
        from curation.runs.filter import run_filter

        level = ctx.params.get("level")
        result = run_filter(
            ctx.dataset,
            method=ctx.params["method"],
            key=ctx.params["key"],
            level=None if level is None else float(level),
            calibrate="val" if ctx.params.get("calibrate") else False,
        )
        ctx.trigger("reload_dataset")
        return {"n_synthetic": result.n_synthetic, "n_pass": result.n_pass, "level": result.level}

    def resolve_output(self, ctx) -> types.Property:
        outputs = types.Object()
        outputs.int("n_synthetic", label="Synthetic samples scored")
        outputs.int("n_pass", label="Passed")
        outputs.float("level", label="Level")
        return types.Property(outputs)


class TagSelected(_Operator):
    operator_name = "tag_selected"
    operator_label = "synthcurate: tag selected pass/reject"
    operator_description = "Overrule the filter for the selected synthetic samples"

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

    def resolve_output(self, ctx) -> types.Property:
        outputs = types.Object()
        outputs.int("changed", label="Samples changed")
        outputs.str("decision", label="Decision")
        return types.Property(outputs)


class FilterSummary(_Operator):
    operator_name = "filter_summary"
    operator_label = "synthcurate: filter run summary"
    operator_description = "Method, level and counts of a stored filter run"

    def resolve_input(self, ctx) -> types.Property:
        inputs = types.Object()
        keys = _filter_keys(ctx.dataset)
        if not keys:
            return _invalid(inputs, "No filter run on this dataset yet: run one first.")
        inputs.enum("key", keys, label="Filter run", required=True, default=keys[-1])
        return types.Property(inputs, view=types.View(label="Filter run summary"))

    def execute(self, ctx) -> dict:
        from curation.runs.records import load_run

        config, results = load_run(ctx.dataset, "filter", ctx.params["key"])
        summary = {"key": ctx.params["key"], "method": config.get("method")}
        for name in ("level", "n_synthetic", "n_pass", "n_reject", "n_overridden"):
            summary[name] = results.get(name, config.get(name))
        reasons = results.get("reasons") or {}
        summary["reasons"] = ", ".join(f"{reason} {n}" for reason, n in reasons.items())
        return summary

    def resolve_output(self, ctx) -> types.Property:
        outputs = types.Object()
        outputs.str("key", label="Key")
        outputs.str("method", label="Method")
        outputs.float("level", label="Level")
        for name in ("n_synthetic", "n_pass", "n_reject", "n_overridden"):
            outputs.int(name, label=name.replace("n_", "").replace("_", " ").capitalize())
        outputs.str("reasons", label="Why samples were rejected (field KEY_reason)")
        return types.Property(outputs)


class ExportCurated(_Operator):
    operator_name = "export_curated"
    operator_label = "synthcurate: export current view"
    operator_description = "Write the current view as a training set"

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

    def resolve_output(self, ctx) -> types.Property:
        outputs = types.Object()
        outputs.str("out", label="Written to")
        outputs.int("n_samples", label="Samples")
        return types.Property(outputs)


class DeleteRun(_Operator):
    operator_name = "delete_run"
    operator_label = "synthcurate: delete run"
    operator_description = "Delete a stored run and every field, tag, view and file it wrote"

    def resolve_input(self, ctx) -> types.Property:
        from curation.runs import list_run_keys

        inputs = types.Object()
        keys = [key for key, _, _ in list_run_keys(ctx.dataset)]
        if not keys:
            return _invalid(inputs, "No synthcurate run on this dataset.")
        inputs.enum("key", keys, label="Run", required=True, default=keys[-1])
        return types.Property(inputs, view=types.View(label="Delete a synthcurate run"))

    def execute(self, ctx) -> dict:
        from curation.runs import delete_run

        removed = delete_run(ctx.dataset, ctx.params["key"])
        ctx.trigger("reload_dataset")
        return {
            "key": ctx.params["key"],
            "fields": len(removed.fields),
            "views": len(removed.views),
            "files": len(removed.files),
        }

    def resolve_output(self, ctx) -> types.Property:
        outputs = types.Object()
        outputs.str("key", label="Deleted")
        for name in ("fields", "views", "files"):
            outputs.int(name, label=f"{name.capitalize()} removed")
        return types.Property(outputs)


def register(plugin) -> None:
    """Called by FiftyOne when it loads the plugin."""
    for operator in (RunFilter, TagSelected, FilterSummary, ExportCurated, DeleteRun):
        plugin.register(operator)
