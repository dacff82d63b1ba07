"""The similarity index on Milvus (embedded Milvus Lite, ``<media>/milvus.db``): the same
neighbours as the sklearn index for `curate similar` and for the near-copy links, the
collection's life with the run, the queries Milvus cannot do, and server URIs that do not answer
(real mongod, a real small classifier, real Milvus Lite, real sockets)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import fiftyone as fo
import pytest
from test_bad_inputs import assert_one_error_line, snapshot
from test_embeddings import make_embedded

from curation.cli import main
from curation.errors import CurateError
from curation.ingest import ingest_records
from curation.media import media_root
from curation.readers import Record
from curation.runs.embed import compute_embeddings
from curation.runs.neighbours import find_similar, nearest_neighbours
from curation.runs.records import load_run
from curation.runs.similarity import BACKENDS, CONNECT_TIMEOUT
from curation.runs.ssim import NEAR_COPY_TAG, NEAREST_FIELD, compute_max_ssim
from curation.schema import ORIGIN_FIELD, SPLIT_FIELD

pymilvus = pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAME = "milvus-clone"
N_COPIES = 2


def _collections(uri: str) -> list[str]:
    alias = f"check-{time.monotonic_ns()}"
    pymilvus.connections.connect(alias=alias, uri=uri)
    try:
        return pymilvus.utility.list_collections(using=alias)
    finally:
        pymilvus.connections.disconnect(alias)


@contextlib.contextmanager
def _dead_server(kind: str) -> Iterator[str]:
    """The URL of a server that refuses connections (``refused``: a closed port) or never
    answers (``silent``: a listening socket whose one-slot backlog is already full)."""
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        if kind == "silent":
            server.listen(0)
            filler.connect(("127.0.0.1", port))
        else:
            server.close()
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def store(demo_dataset: str, session_dir: Path) -> dict[str, str]:
    """The embedded test dataset plus copies of real train images as synthetic samples, embedded
    by run ``r`` into the sklearn index (run ``r``) and a Milvus Lite one (run ``mv``).

    Returns:
        Each copy's id -> the id of the real image it copies.
    """
    make_embedded(demo_dataset, NAME, session_dir / "milvus-synthetic")
    dataset = fo.load_dataset(NAME)
    originals = dataset.match({ORIGIN_FIELD: "real", SPLIT_FIELD: "train"}).limit(N_COPIES)
    records = []
    for i, (path, label) in enumerate(
        zip(*originals.values(["filepath", "ground_truth.label"]), strict=True)
    ):
        copy = session_dir / "milvus-copies" / f"copy_{i}{Path(path).suffix}"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copy)
        records.append(Record(str(copy), label))
    ingest_records(records, NAME, source="test", origin="synthetic", append=True)
    compute_embeddings(NAME, "r", progress=False, num_threads=1)  # the copies too
    compute_embeddings(NAME, "r", name="mv", backend="milvus", progress=False, num_threads=1)
    by_path = dict(zip(*dataset.values(["filepath", "id"]), strict=True))
    return {
        by_path[record.filepath]: by_path[path]
        for record, path in zip(records, originals.values("filepath"), strict=True)
    }


def test_embed_on_milvus_lite_under_the_media_folder(store):
    dataset = fo.load_dataset(NAME)
    config, results = load_run(dataset, "embed", "mv")
    uri = str(media_root(NAME) / "milvus.db")
    assert config["backend"] == "milvus" and config["url"] == uri
    assert results == load_run(dataset, "embed", "r")[1]
    assert "milvus_clone_sim_mv" in _collections(uri)
    assert dataset.get_brain_info("sim_mv").config.method == "milvus"


def test_curate_similar_gives_the_sklearn_neighbours(store, capfd):
    dataset = fo.load_dataset(NAME)
    queries = [*store, *dataset.match({ORIGIN_FIELD: "real"}).take(3, seed=1).values("id")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for query in queries:
            found = {}
            for run in ("r", "mv"):
                assert main(["similar", NAME, query, "-k", "6", "--run", run, "--json"]) == 0
                out, err = capfd.readouterr()
                found[run] = json.loads(out.strip().splitlines()[-1])
                assert err == ""
            assert [n["id"] for n in found["mv"]] == [n["id"] for n in found["r"]]
            for a, b in zip(found["mv"], found["r"], strict=True):  # squared L2 reported as L2
                assert a["distance"] == pytest.approx(b["distance"], rel=1e-3, abs=1e-4)
    assert not [w for w in caught if "PyMilvus" in str(w.message)]
    assert main(["similar", NAME, queries[0], "-k", "2", "--run", "mv"]) == 0
    lines = capfd.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and store[queries[0]] in lines[0]


def test_near_copies_are_linked_to_their_original_through_milvus(store):
    dataset = fo.load_dataset(NAME)
    synthetic = dataset.match({ORIGIN_FIELD: "synthetic"}).values("id")
    on_milvus = nearest_neighbours(NAME, synthetic, name="mv")
    on_sklearn = nearest_neighbours(NAME, synthetic, name="r")
    assert {i: n.id for i, n in on_milvus.items()} == {i: n.id for i, n in on_sklearn.items()}
    assert len(on_milvus) == len(synthetic)
    compute_max_ssim(NAME, embed_name="mv", run="mv", size=32, progress=False)
    copies = dataset.match_tags(NEAR_COPY_TAG)
    assert sorted(copies.values("id")) == sorted(store)
    assert dict(zip(*copies.values(["id", NEAREST_FIELD]), strict=True)) == store
    for copy, original in store.items():
        assert on_milvus[copy].id == original and on_milvus[copy].distance < 1e-3


def test_queries_milvus_cannot_do_name_the_backend_and_the_way_around(store, capfd):
    query = next(iter(store))
    with pytest.raises(CurateError, match="'milvus' returns at most 16384 neighbours per query"):
        find_similar(NAME, query, k=20000, name="mv")
    capfd.readouterr()
    assert main(["similar", NAME, query, "-k", "20000", "--run", "mv"]) == 2
    assert_one_error_line(capfd.readouterr().err, "asked for 20000; ask for fewer or embed")
    milvus = BACKENDS.get("milvus")
    for query in ("least-similar", "whole-index", "all-vectors"):
        with pytest.raises(CurateError, match=r"'milvus' cannot do .*--backend sklearn"):
            milvus.require(query)
    BACKENDS.get("sklearn").require("whole-index")


def test_cosine_run_matches_sklearn_and_its_deletion_drops_the_collection(store, capsys):
    for run, backend in (("cosr", "sklearn"), ("cosmv", "milvus")):
        compute_embeddings(
            NAME, "r", name=run, backend=backend, metric="cosine", view="real", progress=False
        )
    query = next(iter(store.values()))  # a real sample: the runs embedded the real ones
    on_milvus = find_similar(NAME, query, k=4, name="cosmv")
    on_sklearn = find_similar(NAME, query, k=4, name="cosr")
    assert [n.id for n in on_milvus] == [n.id for n in on_sklearn]
    for a, b in zip(on_milvus, on_sklearn, strict=True):  # similarity reported as distance
        assert a.distance == pytest.approx(b.distance, rel=1e-3, abs=1e-5)
    uri = str(media_root(NAME) / "milvus.db")
    assert "milvus_clone_sim_cosmv" in _collections(uri)
    assert main(["runs", "delete", NAME, "embed_cosmv"]) == 0
    assert "brain_runs sim_cosmv" in capsys.readouterr().out
    assert "milvus_clone_sim_cosmv" not in _collections(uri)
    assert "milvus_clone_sim_mv" in _collections(uri)
    assert "sim_cosmv" not in fo.load_dataset(NAME).list_brain_runs()


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_milvus_uri_that_does_not_answer_fails_fast_and_writes_nothing(store, kind, capfd):
    media = media_root(NAME)
    before = snapshot(NAME, media)
    with _dead_server(kind) as url:
        args = ["embed", NAME, "--run", "r", "--name", "bad", "--backend", "milvus", "--url", url]
        capfd.readouterr()
        start = time.monotonic()
        assert main(args) == 2
        elapsed = time.monotonic() - start
    out, err = capfd.readouterr()
    assert_one_error_line(err, f"similarity backend 'milvus': no server answers at {url} (")
    assert out == ""
    assert elapsed < CONNECT_TIMEOUT + 2 if kind == "silent" else elapsed < 2, elapsed
    assert snapshot(NAME, media) == before
    assert "emb_bad" not in fo.load_dataset(NAME).get_field_schema()


def test_bad_milvus_uris_are_refused_before_anything_runs(store, tmp_path):
    media = media_root(NAME)
    before = snapshot(NAME, media)
    for url, message in (
        ("http://user:secret@127.0.0.1:19530", "put no password in the milvus URL"),
        (str(tmp_path / "milvus"), "or a Milvus Lite path ending in .db, got"),
        (str(tmp_path / "nope" / "m.db"), "no folder"),
        ("http://127.0.0.1:port", "invalid milvus URL"),
    ):
        with pytest.raises(CurateError, match=message):
            compute_embeddings(NAME, "r", name="bad", backend="milvus", url=url, progress=False)
    assert snapshot(NAME, media) == before
    assert not list(tmp_path.iterdir())


def test_deleting_a_dataset_drops_its_own_index_and_not_the_one_a_clone_shares(store, tmp_path):
    """`curate delete` drops the collection of each Milvus run of the dataset, also in a Milvus
    Lite file outside its media folder; a full clone copies the run records of the dataset it
    was cloned from (``sim_mv``), and deleting the clone leaves that dataset's index alone."""
    clone, outside = "milvus-clone-copy", str(tmp_path / "outside.db")
    fo.load_dataset(NAME).clone(clone, persistent=True)
    assert "sim_mv" in fo.load_dataset(clone).list_brain_runs()
    compute_embeddings(clone, "r", name="out", backend="milvus", url=outside, progress=False)
    assert _collections(outside) == ["milvus_clone_copy_sim_out"]
    assert main(["delete", clone, "--yes"]) == 0
    assert not fo.dataset_exists(clone)
    assert _collections(outside) == []
    assert "milvus_clone_sim_mv" in _collections(str(media_root(NAME) / "milvus.db"))
    query = next(iter(store))
    assert find_similar(NAME, query, k=1, name="mv")[0].id == store[query]
