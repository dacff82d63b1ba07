"""Similarity-index backends, by name, for :func:`fiftyone.brain.compute_similarity`.

- ``sklearn`` (default): in-process, stored in the FiftyOne database; exact; fine up to ~100k
  samples, and the only backend that can do every query (see :data:`QUERIES`).
- ``lancedb``: embedded, on disk under the dataset's media folder (``<media>/lancedb``) unless a
  URI is given; needs ``pip install 'synthcurate[lancedb]'``.
- ``milvus``: a vector store. A URI that is a local path ending in ``.db`` is embedded Milvus
  Lite (the default: ``<media>/milvus.db``, one machine, one process at a time); an
  ``http://host:19530`` (or ``https://``, ``tcp://``) URI is a Milvus server or cluster. Its
  HNSW index is approximate. Needs ``pymilvus`` (and ``milvus-lite`` for the embedded store):
  ``pip install 'synthcurate[scale]'``.
- ``qdrant``: a Qdrant server by URL (``http://host:6333``); needs ``qdrant-client``.
- ``mongodb``: FiftyOne's own database, which must be MongoDB Atlas or 7.0+ with vector search.

A server URL is checked to answer (a TCP connection within :data:`CONNECT_TIMEOUT` seconds)
before anything is computed or written. Where no URL is given, the one in FiftyOne Brain's
config or environment (``FIFTYONE_BRAIN_SIMILARITY_MILVUS_URI``, ...) is used, else the default
above. Credentials are read by FiftyOne Brain from its config or environment (e.g.
``FIFTYONE_BRAIN_SIMILARITY_MILVUS_TOKEN``, ``FIFTYONE_BRAIN_SIMILARITY_QDRANT_API_KEY``), never
stored here. The backend name and URL are kept in the embed run record so an index can be
reopened. A query a backend cannot do raises :class:`CurateError` naming the backend, the query
and the way around it (:meth:`SimilarityBackend.require`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import math
import os
import re
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import fiftyone.brain as fob

from brain.registry import Registry
from curation.errors import CurateError
from curation.media import media_root

METRICS = ("euclidean", "cosine")
DEFAULT_METRIC = "euclidean"
CONNECT_TIMEOUT = 3.0
"""Seconds a server has to accept a connection before an embed or query gives up."""

QUERIES = {
    "k-nearest": "k-nearest-neighbour queries",
    "least-similar": "least-similar queries (sort_by_similarity(reverse=True))",
    "whole-index": "whole-index neighbour queries (find_duplicates, find_unique)",
    "all-vectors": "reading back every vector of the index (get_embeddings() without ids)",
}
"""The kinds of similarity query, by name; each backend lists those it can do."""
ALL_QUERIES = frozenset(QUERIES)
SEARCH_ONLY = frozenset({"k-nearest", "all-vectors"})
SERVER_SCHEMES = ("http", "https", "tcp")


@dataclass(frozen=True)
class SimilarityBackend:
    """How to reach one FiftyOne Brain similarity backend.

    Attributes:
        name: FiftyOne Brain's name of the backend.
        module: the Python client it imports (``None``: nothing beyond FiftyOne).
        install: what to install when ``module`` is missing.
        url_param: FiftyOne Brain's keyword for the server address (``None``: none).
        name_param: its keyword for the table, collection or index name (``None``: none).
        squared_l2: whether the backend reports squared distances for the euclidean metric
            (LanceDB and Milvus do); they are turned into distances by :meth:`to_distances`.
        cosine_similarity: whether it reports cosine similarity, not distance, for the cosine
            metric (Milvus and Qdrant do); turned into ``1 - similarity``.
        queries: the kinds of query (keys of :data:`QUERIES`) it can do.
        max_k: the most neighbours one query can return (``None``: no limit).
        ports: default ``(http, https)`` ports of its server.
        local: the file or folder under the dataset's media folder that holds the index when
            no URL is given (``None``: the backend's own default).
    """

    name: str
    module: str | None = None
    install: str = ""
    url_param: str | None = None
    name_param: str | None = None
    squared_l2: bool = False
    cosine_similarity: bool = False
    queries: frozenset[str] = field(default=SEARCH_ONLY)
    max_k: int | None = None
    ports: tuple[int, int] = (80, 443)
    local: str | None = None

    def check_available(self) -> None:
        """Raise :class:`CurateError` with an install hint when the client is missing."""
        if self.module is None:
            return
        try:
            importlib.import_module(self.module)
        except ImportError:
            raise CurateError(
                f"similarity backend {self.name!r} needs {self.module}: {self.install}"
            ) from None

    def configured_url(self) -> str | None:
        """The URL set in FiftyOne Brain's config or environment, if any."""
        if self.url_param is None:
            return None

        return fob.brain_config.similarity_backends.get(self.name, {}).get(self.url_param)

    def default_url(self, dataset_name: str) -> str | None:
        """Where the index lives when no URL is given (``None``: FiftyOne Brain's config)."""
        if self.local is None or self.configured_url():
            return None

        return str(media_root(dataset_name) / self.local)

    def index_name(self, dataset_name: str, brain_key: str) -> str | None:
        """The table, collection or index name of the dataset's run ``brain_key`` (``None``:
        the backend names nothing)."""
        if self.name_param is None:
            return None
        name = re.sub(r"[^A-Za-z0-9_]", "_", f"{dataset_name}_{brain_key}")
        return name if name[0].isalpha() else f"_{name}"  # Milvus' rule

    def owns_index(self, dataset_name: str, brain_key: str, config: Any) -> bool:
        """Whether the index behind brain run config ``config`` is the dataset's own: a full
        clone of a dataset copies the run's record, not its index, so a clone must not drop
        the index of the dataset it was cloned from."""
        name = self.index_name(dataset_name, brain_key)
        return name is not None and getattr(config, self.name_param or "", None) == name

    def index_options(
        self, dataset_name: str, brain_key: str, url: str | None, metric: str
    ) -> dict[str, Any]:
        """Keyword arguments for ``compute_similarity`` (besides samples and embeddings)."""
        options: dict[str, Any] = {"backend": self.name, "metric": metric}
        if self.name_param is not None:
            options[self.name_param] = self.index_name(dataset_name, brain_key)
        if self.url_param is not None:
            url = url or self.default_url(dataset_name)
            if url is not None and self.local is not None and not urlsplit(url).scheme:
                url = str(Path(url).expanduser().absolute())  # reopened from any folder
            if url is not None:
                options[self.url_param] = url
        elif url is not None:
            raise CurateError(f"similarity backend {self.name!r} takes no `url`", params=("url",))
        return options

    def check_reachable(self, url: str | None) -> None:
        """Raise :class:`CurateError` unless the index at ``url`` (default: FiftyOne Brain's
        config) can be reached: a server must accept a connection within
        :data:`CONNECT_TIMEOUT` seconds; a Milvus Lite path must end in ``.db`` in an existing,
        writable folder. Nothing is written."""
        url = url or self.configured_url()
        if url is None or self.url_param is None:
            return
        parts = urlsplit(url)
        if parts.scheme in SERVER_SCHEMES:
            self._check_server(url, parts)
        elif self.name == "milvus" and parts.scheme != "unix":
            _check_milvus_lite(url)

    def _check_server(self, url: str, parts: SplitResult) -> None:
        try:
            port = parts.port or self.ports[parts.scheme == "https"]
        except ValueError:
            raise CurateError(f"invalid {self.name} URL {url!r}", params=("url",)) from None
        if parts.password:
            raise CurateError(
                f"put no password in the {self.name} URL (it is stored in the run record); set "
                f"FIFTYONE_BRAIN_SIMILARITY_{self.name.upper()}_PASSWORD instead",
                params=("url",),
            )
        try:
            socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            raise CurateError(
                f"similarity backend {self.name!r}: no server answers at {url} ({reason})",
                params=("url",),
            ) from None

    def check_opens(self, url: str | None) -> None:
        """Raise :class:`CurateError` unless the Milvus store at ``url`` (a server, or a Milvus
        Lite path, which this may create) opens with a client, so that an index which cannot
        be built is refused before an older run is replaced; other backends: nothing."""
        if self.name != "milvus":
            return
        from pymilvus import MilvusClient

        url = url or self.configured_url()
        try:
            with quiet_clients():
                MilvusClient(uri=url).close()
        except Exception as error:
            reason = getattr(error, "message", None) or str(error) or type(error).__name__
            raise CurateError(
                f"similarity backend {self.name!r} cannot open {url!r}: {reason.splitlines()[0]}",
                params=("url",),
            ) from None

    def require(self, query: str, k: int | None = None) -> None:
        """Raise :class:`CurateError` when this backend cannot do ``query`` (a key of
        :data:`QUERIES`), or not for ``k`` neighbours, saying what to use instead."""
        if query not in self.queries:
            raise CurateError(
                f"similarity backend {self.name!r} cannot do {QUERIES[query]}; embed with "
                "`--backend sklearn` for them"
            )
        if k is not None and self.max_k is not None and k > self.max_k:
            raise CurateError(
                f"similarity backend {self.name!r} returns at most {self.max_k} neighbours per "
                f"query, asked for {k}; ask for fewer or embed with `--backend sklearn`",
                params=("k",),
            )

    def to_distances(self, values: list[float], metric: str) -> list[float]:
        """The backend's reported distances as plain distances for ``metric``."""
        if self.squared_l2 and metric == "euclidean":
            return [math.sqrt(max(float(v), 0.0)) for v in values]
        if self.cosine_similarity and metric == "cosine":
            return [1.0 - float(v) for v in values]
        return [float(v) for v in values]

    def load_options(self, url: str | None) -> dict[str, Any]:
        """Keyword arguments for ``load_brain_results`` to reconnect to the index."""
        return {self.url_param: url} if self.url_param is not None and url else {}


def backend_failure(backend: str, error: Exception) -> CurateError:
    """A backend's exception (e.g. a server refusing a request) as a one-line error."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return CurateError(f"similarity backend {backend!r} failed: {first}")


def _check_milvus_lite(url: str) -> None:
    path = Path(url).expanduser()
    if path.suffix != ".db":
        raise CurateError(
            f"a Milvus URI is a server (http://host:19530) or a Milvus Lite path ending in .db, "
            f"got {url!r}",
            params=("url",),
        )
    if not path.parent.is_dir():
        raise CurateError(f"no folder {str(path.parent)!r} for Milvus Lite at {url!r}")
    target = path if path.exists() else path.parent  # Milvus Lite makes the .db (a folder)
    if not os.access(target, os.W_OK | (os.X_OK if target.is_dir() else 0)):
        raise CurateError(f"Milvus Lite at {url!r}: {str(target)!r} is not writable")
    if importlib.util.find_spec("milvus_lite") is None:
        raise CurateError(
            "Milvus Lite (a local .db path) needs milvus-lite: pip install 'synthcurate[scale]', "
            "or give a server URI"
        )


@contextlib.contextmanager
def quiet_clients() -> Iterator[None]:
    """Hide PyMilvus 3.0's warnings about its ORM API, which FiftyOne Brain 0.25 uses (the
    ``scale`` extra keeps PyMilvus below 3.1, where it goes), and the tracebacks Milvus Lite
    logs when it cannot open its store (the error reaches the caller, as one line)."""
    lite = logging.getLogger("milvus_lite")
    level = lite.level
    lite.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*ORM-style PyMilvus API", FutureWarning)
            yield
    finally:
        lite.setLevel(level)


BACKENDS: Registry[SimilarityBackend] = Registry("similarity backend")
for _backend in (
    SimilarityBackend("sklearn", queries=ALL_QUERIES),
    SimilarityBackend(
        "lancedb",
        "lancedb",
        "pip install 'synthcurate[lancedb]'",
        "uri",
        "table_name",
        squared_l2=True,
        local="lancedb",
    ),
    SimilarityBackend(
        "qdrant",
        "qdrant_client",
        "pip install qdrant-client",
        "url",
        "collection_name",
        cosine_similarity=True,
        ports=(6333, 6333),
    ),
    SimilarityBackend(
        "milvus",
        "pymilvus",
        "pip install 'synthcurate[scale]'",
        "uri",
        "collection_name",
        squared_l2=True,
        cosine_similarity=True,
        queries=frozenset({"k-nearest"}),
        max_k=16384,
        ports=(19530, 443),
        local="milvus.db",
    ),
    SimilarityBackend("mongodb", "pymongo", "pip install pymongo", None, "index_name", max_k=10000),
):
    BACKENDS.register(_backend.name)(_backend)


def get_backend(name: str) -> SimilarityBackend:
    """The backend called ``name``, checked to be importable.

    Raises:
        CurateError: for an unknown name (listing the known ones) or a missing client.
    """
    backend = BACKENDS.get(name)
    backend.check_available()
    return backend
