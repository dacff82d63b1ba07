"""Similarity-index backends, by name, for :func:`fiftyone.brain.compute_similarity`.

- ``sklearn`` (default): in-process, stored in the FiftyOne database; fine up to ~100k samples.
- ``lancedb``: embedded, on disk under the dataset's media folder (``<media>/lancedb``) unless a
  URI is given; needs ``pip install 'synthcurate[lancedb]'``.
- ``qdrant``, ``milvus``, ``mongodb``: server stores for when one machine is not enough; the URL
  is passed through to FiftyOne Brain (``mongodb`` uses FiftyOne's own database, which must be
  MongoDB Atlas or 7.0+ with vector search). Credentials are read by FiftyOne Brain from its
  config or environment (e.g. ``FIFTYONE_BRAIN_SIMILARITY_QDRANT_API_KEY``), never stored here.

The backend name and URL are kept in the embed run record so an index can be reopened.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass
from typing import Any

from brain.registry import Registry
from curation.errors import CurateError

METRICS = ("euclidean", "cosine")
DEFAULT_METRIC = "euclidean"


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
    """

    name: str
    module: str | None = None
    install: str = ""
    url_param: str | None = None
    name_param: str | None = None
    squared_l2: bool = False

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

    def default_url(self, dataset_name: str) -> str | None:
        """Where the index lives when no URL is given (``None``: the backend's default)."""
        if self.name == "lancedb":
            from curation.datasets import media_root

            return str(media_root(dataset_name) / "lancedb")
        return None

    def index_options(
        self, dataset_name: str, brain_key: str, url: str | None, metric: str
    ) -> dict[str, Any]:
        """Keyword arguments for ``compute_similarity`` (besides samples and embeddings)."""
        options: dict[str, Any] = {"backend": self.name, "metric": metric}
        if self.name_param is not None:
            options[self.name_param] = re.sub(r"[^A-Za-z0-9_]", "_", f"{dataset_name}_{brain_key}")
        if self.url_param is not None:
            url = url or self.default_url(dataset_name)
            if url is not None:
                options[self.url_param] = url
        elif url is not None:
            raise CurateError(f"similarity backend {self.name!r} takes no `url`", params=("url",))
        return options

    def to_distances(self, values: list[float], metric: str) -> list[float]:
        """The backend's reported distances as plain distances for ``metric``."""
        if self.squared_l2 and metric == "euclidean":
            return [math.sqrt(max(float(v), 0.0)) for v in values]
        return [float(v) for v in values]

    def load_options(self, url: str | None) -> dict[str, Any]:
        """Keyword arguments for ``load_brain_results`` to reconnect to the index."""
        return {self.url_param: url} if self.url_param is not None and url else {}


BACKENDS: Registry[SimilarityBackend] = Registry("similarity backend")
for _backend in (
    SimilarityBackend("sklearn"),
    SimilarityBackend(
        "lancedb", "lancedb", "pip install 'synthcurate[lancedb]'", "uri", "table_name", True
    ),
    SimilarityBackend(
        "qdrant", "qdrant_client", "pip install qdrant-client", "url", "collection_name"
    ),
    SimilarityBackend("milvus", "pymilvus", "pip install pymilvus", "uri", "collection_name", True),
    SimilarityBackend("mongodb", "pymongo", "pip install pymongo", None, "index_name"),
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
