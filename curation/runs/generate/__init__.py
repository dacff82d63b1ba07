"""Generate runs: a generator trained (or loaded) and its synthetic rare-class samples added
with lineage (``run``: the kind :data:`GENERATE` and its work; ``data``: what a run reads and
the samples it adds).
"""

from curation.runs.generate.run import (
    GENERATE,
    GenerateConfig,
    GenerateKind,
    GenerateResults,
    describe_sources,
    generate,
)

__all__ = [
    "GENERATE",
    "GenerateConfig",
    "GenerateKind",
    "GenerateResults",
    "describe_sources",
    "generate",
]
