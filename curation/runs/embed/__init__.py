"""Embed runs: a train run's penultimate-layer embeddings stored on the samples and indexed for
similarity search (``compute``: the kind :data:`EMBED` and its work; ``more``: samples added
since, embedded with the run's network). The index backends are :mod:`curation.runs.similarity`.
"""

from curation.runs.embed.compute import (
    EMBED,
    EmbedConfig,
    EmbedKind,
    EmbedResults,
    compute_embeddings,
    embed_view,
    latest_embed_run,
)

__all__ = [
    "EMBED",
    "EmbedConfig",
    "EmbedKind",
    "EmbedResults",
    "compute_embeddings",
    "embed_view",
    "latest_embed_run",
]
