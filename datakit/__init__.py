"""datakit: reasoning fine-tuning data for chest X-ray report generation (the Med-R2 recipe).

The stages are plain functions over polars tables, reachable as submodules:
``datakit.ingest``, ``datakit.retrieve``, ``datakit.annotate``, ``datakit.validate``.
"""

__version__ = "0.1.0"
