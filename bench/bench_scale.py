"""Growth of ingest, filter writes, filters, similarity indexes and the App's Embeddings panel.

Simulated data at each size N (default 10k, 100k, 1M samples):

- images: 16x16 grey PNG files (16 distinct byte strings, one file per sample) under
  ``<workdir>/images/<N>/{normal,rare}/`` (8.6% rare, as in the study), written once;
- embeddings: 512-d, the recipe of ``bench/bench_umap_filter.py`` (an 8-d Gaussian mixture
  lifted by a random ReLU layer), drawn in chunks so that 1M fits in memory; image statistics
  for the ``combined`` filter: 7-d Gaussian draws (the filter only sees that array).

Parts (each in a fresh process per size, so that its peak memory is its own; a private
``mongod`` with a 1 GB WiredTiger cache under ``<workdir>/db`` serves every part):

- ``ingest``: ``curation.ingest.ingest_dir`` of the folder against FiftyOne's own
  ``Dataset.add_samples`` of ``fo.Sample`` objects with the same fields (filepath, metadata,
  split, origin, group, ground_truth), built from the file list in the same process; the ratio
  is our throughput over FiftyOne's (target >= 0.8). Our dataset is kept as ``scale-<N>``;
- ``writes``: a filter run's writes on N samples (``curation.runs.filter.writes.write_fields`` of
  a score and a reason, ``curation.tags.apply_filter_decisions`` for the pass/reject tags)
  against FiftyOne's ``set_values`` + ``tag_samples`` called directly; and, up to
  ``--naive-max`` samples, a per-sample ``sample.save()`` loop;
- ``filter``: ``combined`` and ``umap_gmm`` fit on the real 36% (the study's real/synthetic
  ratio, 18,000 / 31,507) and score the synthetic 64%;
- ``index``: the embeddings written to a field, then ``compute_similarity`` through our embed
  run's ``_build_index`` for each backend (sklearn, lancedb, milvus-lite) and k=10 queries;
  a backend whose build takes more than ``--max-build`` seconds is not run at larger sizes;
- ``app``: ``compute_visualization`` of N 2-D points and the App server's answers to the
  Embeddings panel (``/embeddings/v2/*``, which the App of this FiftyOne calls, and the legacy
  ``/embeddings/plot``): time and size of each response.

Every part prints one JSON line per measurement; the parent prints a table and merges the
results into ``<workdir>/results.json`` (``--out``).

    OMP_NUM_THREADS=1 taskset -c 1 nice -n 5 .venv/bin/python bench/bench_scale.py \\
        --sizes 10000,100000 --parts ingest,writes,filter,index,app
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PARTS = ("ingest", "writes", "filter", "index", "app")
FILTER_NAMES = ("combined", "umap_gmm")
BACKEND_NAMES = ("sklearn", "lancedb", "milvus")
RARE_FRACTION, REAL_FRACTION, DIM, LATENT = 0.086, 18000 / 49507, 512, 8
EMBED_FIELD = "bench_emb"


# ---------------------------------------------------------------- measuring


class PeakRSS:
    """Peak resident memory of this process and its children (sampled every 50 ms)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            with contextlib.suppress(Exception):
                total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def gb(self) -> float:
        return round(self.peak / 2**30, 3)


def emit(part: str, n: int, what: str, **values) -> None:
    """One measurement as a JSON line (read back by the parent)."""
    print("RESULT " + json.dumps({"part": part, "n": n, "what": what, **values}), flush=True)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


# ---------------------------------------------------------------- data


def image_folder(workdir: Path, n: int) -> Path:
    """``<workdir>/images/<n>/{normal,rare}/<i>.png``, written once (16 distinct PNGs)."""
    from brain.images import write_png

    folder = workdir / "images" / str(n)
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    variants = []
    for k in range(16):
        path = workdir / f"variant{k}.png"
        write_png(rng.integers(0, 256, (16, 16, 1), dtype=np.uint8), path)
        variants.append(path.read_bytes())
    n_rare = round(n * RARE_FRACTION)
    for label, count in (("normal", n - n_rare), ("rare", n_rare)):
        (folder / label).mkdir(parents=True)
        for i in range(count):
            (folder / label / f"{i:07d}.png").write_bytes(variants[i % 16])
    done.touch()
    return folder


def simulate(n: int, seed: int = 0, chunk: int = 50_000):
    """``(embeddings float32 (n, 512), rare mask, synthetic mask)``: the recipe of
    ``bench_umap_filter.simulate_embeddings`` (faithful scenario), drawn in chunks."""
    rng = np.random.default_rng(seed)
    lift = rng.normal(size=(LATENT, DIM)) / np.sqrt(LATENT)
    bias = rng.normal(scale=0.3, size=DIM)
    normal_means = rng.normal(scale=2.0, size=(3, LATENT))
    rare_means = rng.normal(scale=2.0, size=(2, LATENT))
    rare_means[1] = rare_means[0] + rng.normal(scale=0.8, size=LATENT)
    scattered = np.vstack([rare_means, normal_means])
    # kind per sample: 0-2 real normal, 3-4 real rare, 5-6 synthetic near rare, 7 collapsed,
    # 8-12 scattered
    n_real = round(n * REAL_FRACTION)
    n_rare = round(n_real * RARE_FRACTION)
    n_syn = n - n_real
    n_near, n_collapsed = int(0.78 * n_syn), int(0.12 * n_syn)
    means = np.vstack([normal_means, rare_means, rare_means, normal_means[1:2], scattered])
    spreads = np.array([0.6] * 3 + [0.5] * 4 + [0.4] + [1.5] * 5)
    kind = np.concatenate(
        [
            rng.choice(3, n_real - n_rare, p=[0.4, 0.35, 0.25]),
            3 + rng.choice(2, n_rare, p=[0.7, 0.3]),
            5 + rng.choice(2, n_near, p=[0.7, 0.3]),
            np.full(n_collapsed, 7),
            8 + rng.choice(5, n_syn - n_near - n_collapsed),
        ]
    )
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, chunk):
        k = kind[start : start + chunk]
        latent = means[k] + rng.normal(size=(len(k), LATENT)) * spreads[k, None]
        noise = rng.normal(scale=0.15, size=(len(k), DIM))
        out[start : start + chunk] = np.maximum(latent @ lift + bias + noise, 0.0)
    return out, (kind >= 3) & (kind <= 4), kind >= 5


def baseline_samples(records, split_of) -> list:
    """``fo.Sample`` objects with the fields our ingest writes (for FiftyOne's add_samples)."""
    import fiftyone as fo

    from curation.schema import GROUP_FIELD, LABEL_FIELD, ORIGIN_FIELD, SPLIT_FIELD

    samples = []
    for i, record in enumerate(records):
        fields = {SPLIT_FIELD: split_of[i], ORIGIN_FIELD: "real", GROUP_FIELD: None}
        fields[LABEL_FIELD] = fo.Classification(label=record.label)
        metadata = fo.ImageMetadata(width=16, height=16, num_channels=1)
        samples.append(fo.Sample(filepath=record.filepath, metadata=metadata, **fields))
    return samples


def scale_dataset(workdir: Path, n: int):
    """The dataset ``scale-<n>`` (made by the ingest part, else here with add_samples)."""
    import fiftyone as fo

    from curation.readers import read_directory
    from curation.schema import ensure_schema

    name = f"scale-{n}"
    if fo.dataset_exists(name):
        return fo.load_dataset(name)
    records = read_directory(image_folder(workdir, n))
    splits = np.random.default_rng(0).choice(["train", "val", "test"], len(records))
    dataset = fo.Dataset(name, persistent=True)
    ensure_schema(dataset)
    dataset.add_samples(baseline_samples(records, splits), progress=False)
    return dataset


# ---------------------------------------------------------------- parts


def part_ingest(workdir: Path, n: int, args) -> None:
    import fiftyone as fo

    from curation.ingest import ingest_dir
    from curation.readers import read_directory

    folder = image_folder(workdir, n)
    ours_name, base_name = f"scale-{n}", f"base-{n}"

    def ours() -> float:
        if fo.dataset_exists(ours_name):
            fo.delete_dataset(ours_name)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            _, seconds = timed(profiler.runcall, ingest_dir, folder, ours_name)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            return seconds
        with PeakRSS() as peak:
            _, seconds = timed(ingest_dir, folder, ours_name)
        emit("ingest", n, "ours", seconds=seconds, rate=n / seconds, peak_gb=peak.gb)
        return seconds

    def fiftyone() -> float:
        if fo.dataset_exists(base_name):
            fo.delete_dataset(base_name)
        records = read_directory(folder)  # the file list: given to FiftyOne, untimed
        splits = np.random.default_rng(0).choice(["train", "val", "test"], len(records))
        with PeakRSS() as peak:
            start = time.perf_counter()
            samples = baseline_samples(records, splits)
            built = time.perf_counter()
            dataset = fo.Dataset(base_name)
            dataset.add_samples(samples, progress=False)
            seconds = time.perf_counter() - start
        add_only = seconds - (built - start)
        emit(
            "ingest", n, "fiftyone", seconds=seconds, rate=n / seconds, peak_gb=peak.gb,
            add_samples_seconds=add_only,
        )  # fmt: skip
        del samples
        dataset.delete()
        return seconds

    # the files into the page cache (untimed; FiftyOne's add_samples never reads them, our
    # ingest decodes each one): the ratio compares work, not this disk's cold reads
    start = time.perf_counter()
    for record in read_directory(folder):
        Path(record.filepath).read_bytes()
    emit("ingest", n, "read_files_once", seconds=time.perf_counter() - start)
    # untimed warm-up of both paths (lazy imports, first dataset) on 300 images
    warm = image_folder(workdir, 300)
    ingest_dir(warm, "warm-up", overwrite=True)
    warm_records = read_directory(warm)
    fo.Dataset("warm-up-fo").add_samples(
        baseline_samples(warm_records, ["train"] * len(warm_records)), progress=False
    )
    fo.delete_datasets("warm-up*")
    pairs = args.repeats if n <= 10_000 else 1
    ratios = []
    for i in range(pairs):
        order = (fiftyone, ours) if i % 2 == 0 else (ours, fiftyone)
        seconds = {f.__name__: f() for f in order}
        ratios.append(seconds["fiftyone"] / seconds["ours"])
    emit("ingest", n, "ratio", ratio=float(np.median(ratios)), ratios=ratios)


def part_writes(workdir: Path, n: int, args) -> None:
    from curation.runs.filter.writes import write_fields
    from curation.schema import ORIGIN_FIELD
    from curation.tags import apply_filter_decisions

    dataset = scale_dataset(workdir, n)
    dataset.set_values(ORIGIN_FIELD, ["synthetic"] * len(dataset))  # filters tag synthetic ones
    ids = dataset.values("id")
    rng = np.random.default_rng(0)
    scores = rng.random(len(ids))
    passed = scores >= 0.5
    reasons = np.where(passed, "pass", "unrealistic").astype(object)

    with PeakRSS() as peak:
        _, t_fields = timed(
            write_fields, dataset, ids, {"bench_score": scores, "bench_reason": reasons}
        )
        _, t_tags = timed(
            apply_filter_decisions, dataset, "bench", dict(zip(ids, passed.tolist(), strict=True))
        )
    ours = t_fields + t_tags
    emit(
        "writes", n, "ours", seconds=ours, fields_seconds=t_fields, tags_seconds=t_tags,
        rate=n / ours, peak_gb=peak.gb,
    )  # fmt: skip

    def direct() -> None:
        dataset.set_values("fo_score", scores.tolist())
        dataset.set_values("fo_reason", reasons.tolist())
        dataset.untag_samples(["fo-pass", "fo-reject"])
        dataset.select([i for i, ok in zip(ids, passed, strict=True) if ok]).tag_samples("fo-pass")
        dataset.select([i for i, ok in zip(ids, passed, strict=True) if not ok]).tag_samples(
            "fo-reject"
        )

    _, base = timed(direct)
    emit("writes", n, "fiftyone_set_values", seconds=base, rate=n / base, ratio=base / ours)
    if n <= args.naive_max:
        start = time.perf_counter()
        for sample, score, ok, reason in zip(
            dataset.select(ids, ordered=True), scores, passed, reasons, strict=True
        ):
            sample["naive_score"] = float(score)
            sample["naive_reason"] = reason
            sample.tags.append("naive-pass" if ok else "naive-reject")
            sample.save()
        naive = time.perf_counter() - start
        emit("writes", n, "naive_save", seconds=naive, rate=n / naive, slower=naive / ours)
    for field in ("bench_score", "bench_reason", "fo_score", "fo_reason", "naive_score",
                  "naive_reason"):  # fmt: skip
        if dataset.has_sample_field(field):
            dataset.delete_sample_field(field)
    dataset.untag_samples(["fo-pass", "fo-reject", "naive-pass", "naive-reject"])
    dataset.set_values(ORIGIN_FIELD, ["real"] * len(dataset))


def part_filter(workdir: Path, n: int, args) -> None:
    del workdir
    from brain.filters import FILTERS

    X, rare, synthetic = simulate(n)
    real = ~synthetic
    rng = np.random.default_rng(1)
    stats = rng.normal(size=(n, 7))
    stats[rare] += 0.5
    data_gb = round((X.nbytes + stats.nbytes) / 2**30, 3)
    # what the real statistics cost: image_statistics on 16x16 grey images (per image)
    from brain.filters.image_stats import image_statistics

    images = rng.integers(0, 256, (min(n, 5000), 16, 16, 1), dtype=np.uint8)
    _, seconds = timed(image_statistics, images)
    emit("filter", n, "image_statistics", seconds=seconds, per_image_us=1e6 * seconds / len(images))
    for name in args.filters:
        if name == "umap_gmm" and n > args.umap_max:
            continue
        flt = FILTERS.get(name)()
        features = {"image_features": stats[real]} if name == "combined" else {}
        scoring = {"image_features": stats[synthetic]} if name == "combined" else {}
        with PeakRSS() as peak:
            _, t_fit = timed(flt.fit, X[real], rare[real], **features)
            scores, t_score = timed(flt.score_samples, X[synthetic], **scoring)
        emit(
            "filter", n, name, fit_seconds=t_fit, score_seconds=t_score,
            seconds=t_fit + t_score, n_fit=int(real.sum()), n_score=int(synthetic.sum()),
            peak_gb=peak.gb, data_gb=data_gb, pass_rate=float(flt.decide_scores(scores).mean()),
        )  # fmt: skip
        del flt


def _milvus_direct(dataset, ids, brain_key, uri):
    import fiftyone.brain as fob

    return fob.compute_similarity(
        dataset.select(list(ids)), embeddings=EMBED_FIELD, brain_key=brain_key, backend="milvus",
        uri=uri, collection_name=f"bench_{len(ids)}", metric="euclidean", progress=False,
    )  # fmt: skip


def part_index(workdir: Path, n: int, args) -> None:
    from curation.runs.embed.compute import _build_index
    from curation.runs.footprint import cleanup_brain_run
    from curation.runs.similarity import get_backend

    dataset = scale_dataset(workdir, n)
    ids = dataset.values("id")
    if not dataset.has_sample_field(EMBED_FIELD):
        X, _, _ = simulate(len(ids))
        with PeakRSS() as peak:
            _, seconds = timed(
                dataset.set_values, EMBED_FIELD, dict(zip(ids, X, strict=True)), key_field="id"
            )
        emit("index", n, "write_embeddings", seconds=seconds, rate=n / seconds, peak_gb=peak.gb)
        del X
    queries = simulate(64, seed=5)[0]
    for name in args.backends:
        backend = get_backend(name)
        brain_key = f"bench_{name}"
        url = {"lancedb": workdir / "lancedb", "milvus": workdir / "milvus" / f"s{n}.db"}.get(name)
        if url is not None:
            url.parent.mkdir(parents=True, exist_ok=True)
        options = backend.index_options(dataset.name, brain_key, str(url) if url else None,
                                        "euclidean")  # fmt: skip
        load_options = backend.load_options(options.get(backend.url_param))
        cleanup_brain_run(dataset, brain_key, **load_options)
        how = "ours"
        with PeakRSS() as peak:
            start = time.perf_counter()
            try:
                _build_index(dataset, EMBED_FIELD, brain_key, options, name)
            except Exception as error:
                if name != "milvus":
                    raise
                how = f"fiftyone.brain directly (ours failed: {str(error)[:120]})"
                cleanup_brain_run(dataset, brain_key, uri=str(url))
                start = time.perf_counter()
                _milvus_direct(dataset, ids, brain_key, str(url))
            build = time.perf_counter() - start
            reopen = backend.load_options(options.get("uri"))
            index = dataset.load_brain_results(brain_key, cache=False, **reopen)
            times = []
            for query in queries[: args.queries]:
                _, seconds = timed(index._kneighbors, query=query, k=10, return_dists=True)
                times.append(seconds)
        emit(
            "index", n, name, build_seconds=build, first_query_seconds=times[0],
            query_seconds=float(np.median(times[1:])), peak_gb=peak.gb, path=how,
        )  # fmt: skip
        with contextlib.suppress(Exception):
            index.cleanup()
        dataset.delete_brain_run(brain_key)
        if url is not None and name == "milvus":
            shutil.rmtree(url.parent, ignore_errors=True)


def _post(port: int, route: str, payload: dict) -> tuple[float, int]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{route}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        body = response.read()
    seconds = time.perf_counter() - start
    if body[:1] == b"{" and b'"error"' in body[:200]:
        raise RuntimeError(f"{route}: {body[:300]!r}")
    return seconds, len(body)


def part_app(workdir: Path, n: int, args) -> None:
    import fiftyone.brain as fob
    import psutil

    from curation.schema import LABEL_FIELD

    dataset = scale_dataset(workdir, n)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(len(dataset), 2)) + rng.integers(0, 5, (len(dataset), 1))
    if "bench_vis" in dataset.list_brain_runs():
        dataset.delete_brain_run("bench_vis")
    with PeakRSS() as peak:
        _, seconds = timed(
            fob.compute_visualization, dataset, points=points, brain_key="bench_vis",
            method="manual", progress=False,
        )  # fmt: skip
    emit("app", n, "compute_visualization", seconds=seconds, peak_gb=peak.gb)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "fiftyone.server.main", "--port", str(port),
         "--address", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.5)
        base = {"datasetName": dataset.name, "brainKey": "bench_vis"}
        requests = [
            ("/embeddings/v2/run-info", base),
            ("/embeddings/v2/geometry", base),
            ("/embeddings/v2/color", {**base, "field": f"{LABEL_FIELD}.label"}),
            ("/embeddings/v2/masks", {**base, "view": [], "filters": {}}),
            ("/embeddings/v2/ids", {**base, "kind": "points"}),
            (
                "/embeddings/plot",
                {**base, "view": [], "labelField": f"{LABEL_FIELD}.label", "slices": None},
            ),
        ]
        for route, payload in requests:
            try:
                first, size = _post(port, route, payload)
                again, _ = _post(port, route, payload)
            except Exception as error:
                emit("app", n, route, error=str(error)[:300])
                continue
            rss = psutil.Process(server.pid).memory_info().rss / 2**30
            emit(
                "app", n, route, first_seconds=first, again_seconds=again,
                bytes=size, server_rss_gb=round(rss, 3),
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---------------------------------------------------------------- parent


def start_mongod(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A private ``mongod`` on ``<workdir>/db`` (kept between invocations), 1 GB cache."""
    from curation.private_db import bundled_mongod

    data = workdir / "db"
    data.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [bundled_mongod(), "--dbpath", str(data), "--port", str(port), "--bind_ip",
               "127.0.0.1", "--logpath", str(workdir / "mongod.log"),
               "--wiredTigerCacheSizeGB", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mongod exited; see {workdir / 'mongod.log'}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"mongodb://127.0.0.1:{port}"
        time.sleep(0.2)
    raise RuntimeError("mongod did not start within 60 s")


def run_worker(part: str, n: int, args, env: dict) -> list[dict]:
    command = [sys.executable, __file__, "--worker", part, "--sizes", str(n)]
    command += ["--workdir", str(args.workdir), "--naive-max", str(args.naive_max)]
    command += ["--umap-max", str(args.umap_max), "--repeats", str(args.repeats)]
    command += ["--filters", ",".join(args.filters), "--backends", ",".join(args.backends)]
    command += ["--queries", str(args.queries)] + (["--profile"] if args.profile else [])
    process = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    rows = []
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            rows.append(json.loads(line[7:]))
        else:
            print(line)
    if process.returncode:
        rows.append({"part": part, "n": n, "what": "failed", "returncode": process.returncode})
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    keys = ("seconds", "rate", "ratio", "fit_seconds", "score_seconds", "build_seconds",
            "query_seconds", "first_seconds", "bytes", "peak_gb", "server_rss_gb")  # fmt: skip
    print(f"\n{'part':8} {'n':>8} {'what':28} " + " ".join(f"{k:>13}" for k in keys))
    for row in rows:
        cells = []
        for key in keys:
            value = row.get(key)
            cells.append(f"{value:13.4g}" if isinstance(value, float | int) else f"{'':13}")
        print(f"{row['part']:8} {row['n']:>8} {str(row['what'])[:28]:28} " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_scale"))
    parser.add_argument("--out", type=Path, help="JSON results (default <workdir>/results.json)")
    parser.add_argument("--filters", default=",".join(FILTER_NAMES))
    parser.add_argument("--backends", default=",".join(BACKEND_NAMES))
    parser.add_argument("--naive-max", type=int, default=10_000, help="per-sample saves up to N")
    parser.add_argument("--umap-max", type=int, default=1_000_000, help="umap_gmm up to N")
    parser.add_argument("--max-build", type=float, default=600.0, help="seconds, per backend")
    parser.add_argument("--repeats", type=int, default=4, help="ingest pairs at N <= 10k")
    parser.add_argument("--queries", type=int, default=21)
    parser.add_argument("--profile", action="store_true", help="cProfile our ingest")
    parser.add_argument("--worker", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    parts = args.parts.split(",")
    args.filters = args.filters.split(",")
    args.backends = args.backends.split(",")
    args.workdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    if args.worker:
        globals()[f"part_{args.worker}"](args.workdir, sizes[0], args)
        return
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; parts: {', '.join(PARTS)}")
    out = args.out or args.workdir / "results.json"
    mongod, uri = start_mongod(args.workdir)
    env = {**os.environ, "FIFTYONE_DATABASE_URI": uri, "FIFTYONE_DO_NOT_TRACK": "true",
           "FIFTYONE_DATABASE_VALIDATION": "false", "PYTHONWARNINGS": "ignore",
           "FIFTYONE_DEFAULT_DATASET_DIR": str(args.workdir / "media"),
           "NUMBA_CACHE_DIR": str(Path.home() / ".cache/synthcurate/numba")}  # fmt: skip
    rows: list[dict] = []
    try:
        for n in sizes:
            for part in parts:
                if part == "index":
                    slow = {
                        r["what"]
                        for r in _load(out) + rows
                        if r["part"] == "index" and r.get("build_seconds", 0) > args.max_build
                    }
                    keep = [b for b in args.backends if b not in slow]
                    if not keep:
                        continue
                    args.backends, every = keep, args.backends
                    found = run_worker(part, n, args, env)
                    args.backends = every
                else:
                    found = run_worker(part, n, args, env)
                import psutil

                mongo_gb = psutil.Process(mongod.pid).memory_info().rss / 2**30
                for row in found:
                    row.update(mongod_rss_gb=round(mongo_gb, 3), at=time.strftime("%H:%M:%S"))
                rows += found
                _save(out, rows)
    finally:
        mongod.terminate()
        mongod.wait(timeout=60)
    print_table(rows)


def _load(out: Path) -> list[dict]:
    return json.loads(out.read_text()) if out.exists() else []


def _save(out: Path, rows: list[dict]) -> None:
    """Merge ``rows`` into ``out`` (a newer row replaces one of the same part, n and what)."""
    merged = {(r["part"], r["n"], str(r["what"])): r for r in _load(out)}
    merged.update({(r["part"], r["n"], str(r["what"])): r for r in rows})
    out.write_text(json.dumps(list(merged.values()), indent=1))


if __name__ == "__main__":
    main()
