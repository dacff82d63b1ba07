"""The cells of a study: which classifier runs it trains, on which data, under which names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """One training condition: real data, plus a generator's synthetic samples (all of them, or
    those that passed the filter), with or without augmentation."""

    experiment: str
    generator: str | None = None
    filtered: bool = False
    augment: bool = False

    @property
    def run(self) -> str:
        """The classifier run name of this cell."""
        parts = [self.experiment, self.generator or "real"]
        if self.generator:
            parts.append("pass" if self.filtered else "all")
        if self.augment:
            parts.append("aug")
        return "-".join(parts)

    @property
    def data_label(self) -> str:
        """How the study's tables name the training data."""
        label = "real"
        if self.augment:
            label += ", augmented"
        if self.generator:
            label += f" + {self.generator} ({'filtered' if self.filtered else 'unfiltered'})"
        return label

    @property
    def baseline(self) -> Cell:
        """The real-data cell it is compared with (same augmentation)."""
        return Cell(self.experiment, augment=self.augment)


def synthetic_view_name(experiment: str, generator: str, filtered: bool) -> str:
    """The saved view of a generator's synthetic samples (all, or those that passed)."""
    return f"{experiment}-{generator}-{'pass' if filtered else 'all'}"


def study_cells(experiment: str, generators: list[str], augment: list[bool]) -> list[Cell]:
    """Every cell of the protocol: real; real + unfiltered; real + filtered; per augmentation."""
    cells = []
    for aug in augment:
        cells.append(Cell(experiment, augment=aug))
        for generator in generators:
            cells.append(Cell(experiment, generator, False, aug))
            cells.append(Cell(experiment, generator, True, aug))
    return cells
