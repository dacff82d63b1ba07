"""The study in one command: ``run_experiment(load_config(path))``."""

from curation.experiment.config import ExperimentConfig, load_config, parse_config
from curation.experiment.runner import run_experiment

__all__ = ["ExperimentConfig", "load_config", "parse_config", "run_experiment"]
