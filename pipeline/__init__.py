"""Strength blocks vs running economy, from wearable exports.

Stages (each a subpackage, each reading only the layer below it):
``ingest`` (files -> staging tables), ``strength`` (strength logs and blocks),
``analyze`` (staging -> analysis tables), ``report`` (analysis tables -> HTML/PNG),
``warehouse`` (DuckDB schema, checks, exports), ``demo`` (simulated athletes).
"""

__version__ = "0.1.0"
