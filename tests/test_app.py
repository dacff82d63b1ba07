"""The App as a workbench: plugin operators (called directly and from a real Chromium)."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import time
from pathlib import Path

import fiftyone as fo
import pytest
from conftest import curate_process
from fiftyone.operators.executor import ExecutionError
from test_ingest import assert_one_line_error

from brain.level_choice import Fixed, PassRate, Retrain
from curation.cli import main
from curation.datasets import builtin_views, save_view
from curation.demo import make_demo_data
from curation.errors import CurateError
from curation.ingest import ingest_csv, ingest_dir
from curation.names import pass_tag, reject_tag
from curation.plugins import enable_plugins, operator_uri
from curation.tags import apply_filter_decisions

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
OPERATORS = ("run_filter", "tag_selected", "filter_summary", "export_curated", "delete_run")


@pytest.fixture(scope="module")
def workbench(tmp_path_factory) -> str:
    """Real demo crops plus 30 'synthetic' ones, all tagged by a filter key ``f1``."""
    root = tmp_path_factory.mktemp("workbench")
    real = make_demo_data(root / "real", n_labelled=160, n_pool=0, seed=2)
    synthetic = make_demo_data(root / "synth", n_labelled=120, n_pool=0, seed=3)
    name = "workbench"
    ingest_csv(real.labels_csv, name, rare="translocation")
    ingest_dir(synthetic.root / "labelled", name, append=True, origin="synthetic")
    dataset = fo.load_dataset(name)
    ids = dataset.match({"origin": "synthetic"}).values("id")
    apply_filter_decisions(dataset, "f1", {i: n % 2 == 0 for n, i in enumerate(ids)})
    save_view(dataset, "synthetic", builtin_views(dataset)["synthetic"])
    enable_plugins()
    return name


def _execute(name: str, operator: str, **ctx):
    import fiftyone.operators as foo

    return foo.execute_operator(operator_uri(operator), {"dataset": name, **ctx})


def test_plugin_registers_its_operators(workbench):
    import fiftyone.operators as foo

    uris = {op.uri for op in foo.list_operators()}
    assert {operator_uri(o) for o in OPERATORS} <= uris


def test_tag_selected_overrides_and_is_respected(workbench):
    dataset = fo.load_dataset(workbench)
    rejected = dataset.match_tags(reject_tag("f1")).first().id
    result = _execute(workbench, "tag_selected", selected=[rejected], params={"decision": "pass"})
    assert result.error is None and result.result["changed"] == 1
    sample = dataset[rejected]
    assert pass_tag("f1") in sample.tags and reject_tag("f1") not in sample.tags
    assert sample.manual_decision == "pass"
    ids = dataset.match({"origin": "synthetic"}).values("id")
    counts = apply_filter_decisions(dataset, "f1", dict.fromkeys(ids, False))  # a rerun
    assert counts == {"n_pass": 1, "n_reject": len(ids) - 1, "n_overridden": 1}
    assert pass_tag("f1") in dataset[rejected].tags
    _execute(workbench, "tag_selected", selected=[rejected], params={"decision": "clear"})
    assert dataset[rejected].manual_decision is None


def test_tag_selected_refuses_real_samples(workbench):
    dataset = fo.load_dataset(workbench)
    real = dataset.match({"origin": "real"}).first()
    with pytest.raises(ExecutionError, match="only synthetic samples"):
        _execute(workbench, "tag_selected", selected=[real.id], params={"decision": "pass"})
    assert dataset[real.id].tags == real.tags


def test_export_operator_writes_the_current_view(workbench, tmp_path):
    dataset = fo.load_dataset(workbench)
    view = dataset.match_tags(pass_tag("f1"))
    out = tmp_path / "curated"
    params = {"out": str(out), "format": "imagefolder"}
    result = _execute(workbench, "export_curated", view=view, params=params)
    assert result.error is None and result.result["n_samples"] == len(view)
    assert sum(1 for _ in out.rglob("*.png")) == len(view)
    with pytest.raises(ExecutionError, match="exists; use --overwrite"):
        _execute(workbench, "export_curated", view=view, params=params)


def test_filter_summary_reads_an_older_record(workbench):
    from curation.runs.records import remove_record, store_run

    dataset = fo.load_dataset(workbench)
    old = {"method": "combined", "level": None, "calibrate": "val", "target": 0.9}
    store_run(dataset, "filter", "old", old, {"level": 0.93, "n_synthetic": 30, "n_pass": 12})
    try:
        result = _execute(workbench, "filter_summary", params={"key": "old"}).result
    finally:
        remove_record(dataset, "filter", "old")
    assert result["level"] == 0.93 and result["n_pass"] == 12
    assert result["level_choice"] == "the level at which 90% of the real rare val samples pass"


def test_unknown_filter_key_is_a_clear_error(workbench):
    with pytest.raises(ExecutionError, match="no filter run 'nope'"):
        _execute(workbench, "filter_summary", params={"key": "nope"})


def test_app_refuses_a_port_in_use(workbench, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", workbench, "--port", str(port)]) == 2
    assert_one_line_error(capsys.readouterr().err)
    assert main(["app", workbench, "--port", "70000"]) == 2
    with pytest.raises(CurateError):
        from curation.app import check_port_free

        check_port_free("127.0.0.1", 0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _url_line(process, timeout: float = 180) -> str:
    """The line ``curate app`` prints once its server answers (FiftyOne prints others first),
    read straight from the pipe; what it printed instead if it ends or stays silent."""
    fd, text = process.stdout.fileno(), ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        chunk = os.read(fd, 4096).decode() if ready else ""
        if not chunk:
            break
        text += chunk
        for line in text.splitlines():
            if line.startswith("FiftyOne App:"):
                return line
    return text


def test_sigterm_stops_the_app_and_its_server_within_seconds(workbench):
    import psutil

    port = _free_port()
    process = curate_process("app", workbench, "--port", str(port))
    children = []
    try:
        assert _url_line(process).startswith("FiftyOne App: http://127.0.0.1:")
        assert _answers(port)
        children = psutil.Process(process.pid).children(recursive=True)
        assert children
        process.send_signal(signal.SIGTERM)
        start = time.monotonic()
        _, alive = psutil.wait_procs(children, timeout=3)
        elapsed = time.monotonic() - start
        process.wait(timeout=30)  # then the interpreter exits (seconds on a busy machine)
    finally:
        for child in [process, *children]:
            with contextlib.suppress(psutil.Error, OSError):
                child.kill()
        process.wait()
    assert alive == [] and elapsed < 3, (alive, elapsed)
    assert process.returncode == 128 + signal.SIGTERM
    assert not _answers(port)


@pytest.mark.slow
def test_real_browser_workbench(workbench):
    """Chromium loads the App, shows a saved view, lists the operators and runs tag_selected."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (tests/setup.sh installs it as root)")
    playwright = pytest.importorskip("playwright.sync_api")
    from curation.app import launch

    dataset = fo.load_dataset(workbench)
    n_synthetic = len(dataset.load_saved_view("synthetic"))
    port = _free_port()
    session = launch(workbench, port=port)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/datasets/{workbench}?view=synthetic")
            page.get_by_text(f"{n_synthetic} samples").wait_for(timeout=120_000)
            if page.get_by_text("Dismiss").count():
                page.get_by_text("Dismiss").click()

            page.keyboard.press("`")
            page.keyboard.type("synthcurate")
            for label in ("run filter", "tag selected pass/reject", "filter run summary"):
                page.get_by_text(f"synthcurate: {label}").wait_for(timeout=30_000)
            page.keyboard.press("Escape")

            target = dataset.load_saved_view("synthetic").first()  # the grid's first tile
            before = set(target.tags)
            box = page.locator("body").bounding_box()
            assert box is not None
            for _ in range(3):  # the modal can take a while to open on a busy machine
                page.mouse.click(400, 230)  # open the first tile in the sample modal
                time.sleep(2)
                page.keyboard.press("x")  # select the sample shown in the modal
                time.sleep(1)
                page.keyboard.press("Escape")
                deadline = time.time() + 10
                while session.selected != [target.id] and time.time() < deadline:
                    time.sleep(0.5)
                if session.selected:
                    break
            assert session.selected == [target.id]

            decision = "reject" if pass_tag("f1") in before else "pass"
            page.keyboard.press("`")
            page.keyboard.type("tag selected")
            page.keyboard.press("Enter")
            page.get_by_text(decision, exact=True).click()
            page.get_by_role("button", name="Execute").click()
            deadline = time.time() + 30
            while time.time() < deadline:
                # the App's server process adds the field: reload, then read the sample afresh
                dataset.reload()
                tagged = dataset[target.id]
                if dataset.has_sample_field("manual_decision") and (
                    tagged.manual_decision == decision
                ):
                    break
                time.sleep(0.5)
            page.screenshot(path=str(ARTIFACTS / "app-workbench.png"))
            browser.close()
    finally:
        session.close()
    assert tagged.manual_decision == decision
    assert f"f1:{decision}" in tagged.tags and set(tagged.tags) != before


def test_run_filter_operator_lists_every_filter_and_checks_the_level(workbench):
    from fiftyone.operators.executor import ExecutionContext

    from brain.filters import FILTERS
    from curation.plugins.synthcurate import RunFilter

    def inputs(**params):
        ctx = ExecutionContext(request_params={"dataset_name": workbench, "params": params})
        return RunFilter().resolve_input(ctx).type.properties

    fields = inputs()
    assert fields["method"].type.values == FILTERS.names()
    assert {"combined", "class_posterior", "realism"} <= set(fields["method"].type.values)
    assert fields["method"].default == "combined"
    assert not getattr(inputs(method="knn_precision", level=1.5)["level"], "invalid", False)
    bad = inputs(method="confidence", level=1.5)["level"]
    assert bad.invalid and "[0, 1]" in bad.error_message
    assert "level" not in inputs(calibrate="val", level=0.5)  # hidden while calibrating


@pytest.mark.parametrize(
    "params, choice",
    [
        ({}, Fixed()),
        ({"level": 0.9}, Fixed(0.9)),
        ({"calibrate": "off", "level": 0.9}, Fixed(0.9)),
        ({"calibrate": "val"}, PassRate()),
        ({"calibrate": "val", "level": 0.9}, PassRate()),  # the form hides the level then
        ({"calibrate": "retrain"}, Retrain()),
    ],
)
def test_filter_form_builds_the_cli_level_choice(params, choice):
    from curation.plugins.synthcurate import _level_choice

    assert _level_choice(params) == choice


def test_delete_run_operator_removes_the_run_and_what_it_wrote(workbench):
    from curation.runs.ssim import compute_max_ssim

    compute_max_ssim(workbench, threshold=0.5, run="app", progress=False)
    dataset = fo.load_dataset(workbench)
    assert dataset.has_sample_field("max_ssim") and dataset.has_saved_view("near-copies")
    result = _execute(workbench, "delete_run", params={"key": "ssim_app"})
    assert result.error is None and result.result["key"] == "ssim_app"
    assert result.result["fields"] == 2 and result.result["views"] == 1  # no embed run: no link
    dataset.reload()
    assert "ssim_app" not in dataset.list_runs()
    assert not dataset.has_sample_field("max_ssim") and not dataset.has_saved_view("near-copies")
    assert "near-copy" not in dataset.distinct("tags")
    with pytest.raises(ExecutionError, match="no synthcurate run 'ssim_app'"):
        _execute(workbench, "delete_run", params={"key": "ssim_app"})
