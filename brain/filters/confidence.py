"""``confidence``: pass when the real-data classifier's rare-class probability is high enough.

The input is not an embedding but the probability the classifier trained on real data gives
the rare class (``input_kind = "probability"``). The score is that probability; a sample passes
when it is ``>= level`` (default 0.5). Unlike the ellipse filters, a higher level lets *fewer*
samples through.
"""

from __future__ import annotations

import numpy as np

from brain.filters.base import FILTERS, EmbeddingFilter, ProbabilityLevel, check_rare_count


@FILTERS.register("confidence")
class ConfidenceFilter(ProbabilityLevel, EmbeddingFilter):
    """Classifier-confidence filter.

    Level (an argument of ``decide``, chosen per run): minimum rare-class probability in
    ``[0, 1]``; ``None`` = 0.5. The filter has no parameters.

    Attributes:
        default_level_: 0.5.
        real_rare_pass_rate_: fraction of the real rare-class fit samples that pass at the
            default level (a sanity check of the classifier).
    """

    input_kind = "probability"
    reject_reason = "low-confidence"
    level_help = "minimum rare-class probability, in [0, 1]; higher lets fewer through"

    def _fit(
        self, X: np.ndarray, rare: np.ndarray, fine: np.ndarray | None = None, features=None
    ) -> None:
        check_rare_count(int(rare.sum()), 1, why="to check the classifier on")
        self.default_level_ = 0.5
        self.real_rare_pass_rate_ = float((X[rare, 0] >= self.default_level_).mean())

    def _score(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        return X[:, 0].copy()
