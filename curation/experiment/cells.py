"""The cells of a study: which classifier runs it trains, on which data, under which names.

A cell is one arm of the study (with or without augmentation):

=================  ===========================================================================
``real``           the real train split (the baseline every other arm is paired with)
``class-weighted`` the same, with inverse-frequency class weights (rebalancing baseline)
``all``            real + every synthetic sample of a generator (unfiltered)
``filtered``       real + the samples of a generator that passed the filter
``random-matched`` real + a random subset of the generator's samples, as many as ``filtered``
                   (drawn per seed): the filter's own effect is filtered vs random-matched
``oversampled``    real + as many copies of real rare train images as ``filtered`` adds,
                   drawn per seed (rebalancing baseline for the synthetic additions)
=================  ===========================================================================

The per-seed arms (``random-matched``, ``oversampled``) draw their data with the seed, so each
seed is its own train run (``<run>-s<seed>``); the others train all seeds in one run.
"""

from __future__ import annotations

from dataclasses import dataclass

ARMS = ("real", "class-weighted", "all", "filtered", "random-matched", "oversampled")
GENERATOR_ARMS = ("all", "filtered", "random-matched", "oversampled")
SYNTHETIC_ARMS = ("all", "filtered", "random-matched")
"""The arms that train on synthetic samples (a "helps" of theirs must beat oversampling)."""
PER_SEED_ARMS = ("random-matched", "oversampled")
_SUFFIX = {
    "all": "all",
    "filtered": "pass",
    "random-matched": "random",
    "oversampled": "over",
    "class-weighted": "weighted",
}


@dataclass(frozen=True)
class Cell:
    """One training condition of the study (see the module docstring)."""

    experiment: str
    generator: str | None = None
    arm: str = "real"
    augment: bool = False

    @property
    def run(self) -> str:
        """The classifier run name of this cell (per-seed arms: the prefix of their runs)."""
        parts = [self.experiment, self.generator or "real"]
        if self.arm in _SUFFIX:
            parts.append(_SUFFIX[self.arm])
        if self.augment:
            parts.append("aug")
        return "-".join(parts)

    @property
    def per_seed(self) -> bool:
        """Whether each seed draws its own data and is its own train run."""
        return self.arm in PER_SEED_ARMS

    def seed_run(self, seed: int) -> str:
        """The train run of ``seed`` in a per-seed arm."""
        return f"{self.run}-s{seed}"

    @property
    def filtered(self) -> bool:
        """Whether the cell adds the filter's passing samples."""
        return self.arm == "filtered"

    @property
    def data_label(self) -> str:
        """How the study's tables name the training data."""
        label = "real"
        if self.augment:
            label += ", augmented"
        if self.arm == "class-weighted":
            label += ", class-weighted"
        elif self.arm == "all":
            label += f" + {self.generator} (unfiltered)"
        elif self.arm == "filtered":
            label += f" + {self.generator} (filtered)"
        elif self.arm == "random-matched":
            label += f" + {self.generator} (random, as many as filtered)"
        elif self.arm == "oversampled":
            label += f" + real rare copies (as many as {self.generator} filtered)"
        return label

    @property
    def baseline(self) -> Cell:
        """The real-data cell it is compared with (same augmentation)."""
        return Cell(self.experiment, augment=self.augment)

    def sibling(self, arm: str) -> Cell:
        """The cell of another arm for the same generator and augmentation."""
        generator = self.generator if arm in GENERATOR_ARMS else None
        return Cell(self.experiment, generator, arm, self.augment)


def filter_key(experiment: str) -> str:
    """The filter run (and tag prefix) of a study."""
    return f"{experiment.replace('-', '_')}_filter"


def embed_name(experiment: str) -> str:
    """The embed run of a study."""
    return f"{experiment}-emb"


def embedder_run(experiment: str) -> str:
    """The train run of a study's embedding network (``embedding:`` in its config)."""
    return f"{experiment}-embedder"


def sources_view_name(experiment: str, generator: str) -> str:
    """The saved view of a generator's size-matched sources (``source_match: size``)."""
    return f"{experiment}-{generator}-sources"


def synthetic_view_name(experiment: str, generator: str, filtered: bool) -> str:
    """The saved view of a generator's synthetic samples (all, or those that passed)."""
    return f"{experiment}-{generator}-{'pass' if filtered else 'all'}"


def random_view_name(experiment: str, generator: str, seed: int) -> str:
    """The saved view of a generator's random subset for ``seed`` (as many as passed)."""
    return f"{experiment}-{generator}-random-s{seed}"


def cell_runs(cell: Cell, seeds: int) -> list[str]:
    """The train runs of ``cell`` (one per seed in the per-seed arms)."""
    return [cell.seed_run(seed) for seed in range(seeds)] if cell.per_seed else [cell.run]


def study_cells(
    experiment: str, generators: list[str], augment: list[bool], arms: list[str]
) -> list[Cell]:
    """Every cell of the study: the enabled ``arms`` per augmentation (and generator)."""
    cells = []
    for aug in augment:
        for arm in ("real", "class-weighted"):
            if arm in arms:
                cells.append(Cell(experiment, arm=arm, augment=aug))
        for generator in generators:
            cells += [
                Cell(experiment, generator, arm, aug) for arm in GENERATOR_ARMS if arm in arms
            ]
    return cells


COMPARISONS = (
    ("filtered", "random-matched"),
    ("filtered", "real"),
    ("filtered", "all"),
    ("filtered", "oversampled"),
    ("filtered", "class-weighted"),
    ("all", "real"),
    ("all", "oversampled"),
    ("random-matched", "oversampled"),
    ("oversampled", "real"),
    ("class-weighted", "real"),
)
"""Which arms the report compares, paired by seed; the first two are the headline."""


def comparison_pairs(cells: list[Cell]) -> list[tuple[Cell, Cell]]:
    """``(cell, other)`` pairs of :data:`COMPARISONS` present among ``cells``."""
    present = set(cells)
    pairs = []
    for cell in cells:
        for arm, other_arm in COMPARISONS:
            if cell.arm != arm:
                continue
            other = cell.sibling(other_arm)
            if other in present and (cell, other) not in pairs:
                pairs.append((cell, other))
    return pairs
