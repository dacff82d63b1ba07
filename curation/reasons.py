"""Filter decisions counted per generator: why each generator run's samples passed or not."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from curation.names import NO_LINEAGE


def count_reasons(
    generators: Sequence[str | None], reasons: Sequence[str | None]
) -> dict[str, dict[str, int]]:
    """``generator -> reason -> count`` (sorted; a missing generator counts under
    ``"(no lineage)"``, a missing reason is left out)."""
    counts = Counter(
        (generator or NO_LINEAGE, str(reason))
        for generator, reason in zip(generators, reasons, strict=True)
        if reason is not None
    )
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for (generator, reason), n in sorted(counts.items()):
        table[generator][reason] = n
    return dict(table)
