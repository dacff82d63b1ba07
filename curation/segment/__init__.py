"""Segmentation in the product: whole images in, instance crops in a project dataset out.

- :mod:`curation.segment.api`: :func:`~curation.segment.api.segment_images` (whole images ->
  a ``<NAME>-parents`` dataset with Detections and one crop sample per instance) and
  :func:`~curation.segment.api.score_files` (label image files against ground truth).

The methods, crops and scores are pure array code in :mod:`brain.segment`.
"""
