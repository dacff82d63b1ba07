"""Filter runs: every synthetic sample scored in an embedding space and tagged pass or reject
with its reason (``run``: the kind :data:`FILTER` and its work; ``inputs``: what a run reads;
``writes``: what it writes; ``copy_gate``: the near-copy gate; ``calibrate``: the retraining
sweep that chooses a level).
"""

from curation.runs.filter.run import (
    FILTER,
    FilterConfig,
    FilterKind,
    FilterResults,
    run_filter,
)

__all__ = ["FILTER", "FilterConfig", "FilterKind", "FilterResults", "run_filter"]
