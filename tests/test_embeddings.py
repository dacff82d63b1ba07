"""Embeddings of a trained classifier and the similarity index (real mongod, real network)."""

from __future__ import annotations

import json
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from brain.errors import InputError
from brain.images import write_png
from curation.cli import main
from curation.demo import make_crop
from curation.errors import CurateError
from curation.ingest import ingest_records
from curation.media import media_root
from curation.readers import Record
from curation.runs.embed import compute_embeddings
from curation.runs.neighbours import find_similar
from curation.runs.records import load_run
from curation.runs.train import train_classifier
from curation.schema import ORIGIN_FIELD

N_SYNTHETIC = 6


def make_embedded(source: str, name: str, folder: Path) -> str:
    """Dataset ``name``: a clone of ``source`` plus synthetic crops (written under ``folder``),
    a small train run ``r`` and its embeddings (embed run ``r``, sklearn)."""
    fo.load_dataset(source).clone(name, persistent=True)
    records = []
    for i in range(N_SYNTHETIC):
        path = folder / f"syn_{i}.png"
        write_png(make_crop(500 + i, size=64, translocation=True), path)
        records.append(Record(str(path), "translocation"))
    ingest_records(records, name, source="test", origin="synthetic", append=True)
    train_classifier(name, "r", epochs=1, subset=80, size=16, progress=False, num_threads=1)
    compute_embeddings(name, "r", progress=False, num_threads=1)
    return name


@pytest.fixture(scope="module")
def embedded(demo_dataset: str, session_dir: Path) -> str:
    """A clone of the demo dataset plus synthetic crops, a small train run and its embeddings."""
    return make_embedded(demo_dataset, "emb-clone", session_dir / "emb-synthetic")


def _real_vectors(dataset: fo.Dataset, field: str) -> tuple[list[str], np.ndarray]:
    real = dataset.match(fo.ViewField(ORIGIN_FIELD) == "real")
    ids, vectors = real.values(["id", field])
    return ids, np.stack(vectors)


def _brute_force(dataset: fo.Dataset, field: str, query_id: str, k: int) -> list[str]:
    ids, vectors = _real_vectors(dataset, field)
    query = np.asarray(dataset[query_id][field])
    dists = np.linalg.norm(vectors - query, axis=1)
    order = [ids[i] for i in np.argsort(dists) if ids[i] != query_id]
    return order[:k]


def test_embeddings_have_the_right_shape_and_are_recorded(embedded):
    dataset = fo.load_dataset(embedded)
    vectors = dataset.values("emb_r")
    assert len(vectors) == len(dataset) == 520 + N_SYNTHETIC
    assert all(np.asarray(v).shape == (512,) for v in vectors)
    assert np.isfinite(np.stack(vectors)).all()
    config, results = load_run(dataset, "embed", "r")
    assert config["train_run"] == "r" and config["backend"] == "sklearn"
    assert results == {"n": 520 + N_SYNTHETIC, "dim": 512}
    assert "sim_r" in dataset.list_brain_runs()


@pytest.mark.parametrize("origin", ["synthetic", "real"])
def test_similar_returns_the_nearest_real_samples(embedded, origin):
    dataset = fo.load_dataset(embedded)
    query = dataset.match(fo.ViewField(ORIGIN_FIELD) == origin).first()
    neighbours = find_similar(embedded, query.id, k=5)
    assert len(neighbours) == 5
    assert all(n.origin == "real" and n.id != query.id for n in neighbours)
    distances = [n.distance for n in neighbours]
    assert distances == sorted(distances)
    assert [n.id for n in neighbours] == _brute_force(dataset, "emb_r", query.id, 5)
    first = np.asarray(dataset[neighbours[0].id]["emb_r"])
    assert distances[0] == pytest.approx(np.linalg.norm(first - query["emb_r"]), rel=1e-4)


def test_lancedb_backend_on_disk_gives_the_same_neighbours(embedded):
    pytest.importorskip("lancedb")
    report = compute_embeddings(
        embedded, "r", name="lance", backend="lancedb", progress=False, num_threads=1
    )
    assert report.backend == "lancedb" and report.field == "emb_lance"
    config, _ = load_run(fo.load_dataset(embedded), "embed", "lance")
    assert Path(config["url"]) == media_root(embedded) / "lancedb"
    assert any((media_root(embedded) / "lancedb").iterdir())
    query = fo.load_dataset(embedded).first().id
    lance = find_similar(embedded, query, k=4, name="lance")
    sklearn = find_similar(embedded, query, k=4, name="r")
    assert [n.id for n in lance] == [n.id for n in sklearn]
    for a, b in zip(lance, sklearn, strict=True):  # LanceDB's squared L2 is reported as L2
        assert a.distance == pytest.approx(b.distance, rel=1e-4)


def test_bad_embedding_and_query_input(embedded):
    with pytest.raises(InputError, match=r"unknown similarity backend 'faiss'.*sklearn"):
        compute_embeddings(embedded, "r", backend="faiss", progress=False)
    with pytest.raises(CurateError, match="unknown metric 'dot'"):
        compute_embeddings(embedded, "r", metric="dot", progress=False)
    with pytest.raises(CurateError, match="no train run 'nope'"):
        compute_embeddings(embedded, "nope", progress=False)
    with pytest.raises(CurateError, match="no view 'nope'"):
        compute_embeddings(embedded, "r", view="nope", name="other", progress=False)
    with pytest.raises(CurateError, match="no sample"):
        find_similar(embedded, "000000000000000000000000")
    with pytest.raises(CurateError, match="no embed run 'nope'"):
        find_similar(embedded, fo.load_dataset(embedded).first().id, name="nope")
    assert "embed_other" not in fo.load_dataset(embedded).list_runs()


def test_server_backends_need_their_client(embedded, monkeypatch):
    import importlib

    real_import = importlib.import_module

    def no_qdrant(module, *args):
        if module == "qdrant_client":
            raise ImportError(module)
        return real_import(module, *args)

    monkeypatch.setattr(importlib, "import_module", no_qdrant)
    with pytest.raises(CurateError, match="needs qdrant_client: pip install qdrant-client"):
        compute_embeddings(embedded, "r", backend="qdrant", url="http://localhost:6333")


def test_sample_without_embedding_and_dataset_without_embed_runs(embedded, demo_dataset, name):
    dataset = fo.load_dataset(embedded)
    compute_embeddings(embedded, "r", name="pool-only", view="pool", progress=False, num_threads=1)
    train_id = dataset.match(fo.ViewField("split") == "train").first().id
    with pytest.raises(CurateError, match="has no embedding"):
        find_similar(embedded, train_id, name="pool-only")
    pool_id = dataset.match(fo.ViewField("split") == "pool").first().id
    neighbours = find_similar(embedded, pool_id, k=3, name="pool-only")
    assert len(neighbours) == 3 and {n.split for n in neighbours} == {"pool"}  # index = view
    fo.load_dataset(demo_dataset).clone(name, persistent=True)
    with pytest.raises(CurateError, match="no embeddings; run `curate embed` first"):
        find_similar(name, pool_id)


def test_cli_embed_and_similar(embedded, capsys):
    code = main(["embed", embedded, "--run", "r", "--name", "cli", "--threads", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["dim"] == 512 and report["brain_key"] == "sim_cli"
    query = fo.load_dataset(embedded).first().id
    assert main(["similar", embedded, query, "-k", "3", "--run", "cli", "--json"]) == 0
    neighbours = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(neighbours) == 3 and all(n["origin"] == "real" for n in neighbours)
    assert main(["similar", embedded, query, "-k", "3", "--run", "cli"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and neighbours[0]["id"] in lines[0]
    assert main(["similar", embedded, "not-an-id"]) == 2
