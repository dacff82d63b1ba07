"""synthcurate's FiftyOne product: the data model, ingest, views, tags, export, the runs layer
(:mod:`curation.runs`), the study (:mod:`curation.experiment`), the CLI and the App plugin.

Importing it sets the environment defaults once (:func:`curation.environment.set_environment`),
so the Python API and the App plugin run under the same settings as ``curate``.
"""

from curation.environment import set_environment

set_environment()
