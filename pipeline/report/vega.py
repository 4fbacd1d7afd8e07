"""The interactive charts' JavaScript, inlined into each page so it opens offline and makes no request.

The charts are Vega-Lite specs (built with Altair in :mod:`pipeline.report.charts`); the browser draws them
with vega, vega-lite and vega-embed. Their minified bundle (~0.9 MB) comes from the ``vl-convert-python``
package (the Vega project's own converter, which ships those libraries), never from a CDN. Building it
takes vl-convert several seconds, so it is cached once per vl-convert version under
``data/processed/`` (a cache: deleting it only costs that time once).

Choice of library (page weight on a phone, inlined, minified / gzipped): vega + vega-lite + vega-embed
0.9 MB / 0.3 MB; BokehJS 1.2 MB / 0.34 MB (1.9 MB with the table widgets); plotly.js 4.7 MB / 1.4 MB.
Vega also draws SVG, so the size of every figure text can be measured in the DOM (the browser test does).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import vl_convert

# vega-embed's options for every chart: SVG (text measurable, crisp when zoomed), only the local export
# actions in the menu (no "open in the Vega editor", which would send the spec to a web site).
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False,
                                                "editor": False}}

_BUNDLE: dict[str, str] = {}


def vega_bundle(cache_dir: Path | None = None) -> str:
    """The JavaScript that defines ``vegaEmbed`` (with vega and vega-lite), from memory, the cache file, or
    built by vl-convert (then cached)."""
    version = vl_convert.__version__
    if version in _BUNDLE:
        return _BUNDLE[version]
    cache = cache_dir / f"vega-bundle-{version}.js" if cache_dir is not None else None
    if cache is not None and cache.exists():
        js = cache.read_text(encoding="utf-8")
    else:
        js = vl_convert.javascript_bundle()
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.tmp")
            tmp.write_text(js, encoding="utf-8")
            os.replace(tmp, cache)
    _BUNDLE[version] = js
    return js


def _finite(value):
    """NaN and infinities (missing values in a chart's data) as JSON null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def script_safe_json(value) -> str:
    """JSON for inside a ``<script>`` element: ``</`` and ``<!--`` cannot end or confuse it (athlete names,
    file names and exclusion reasons come from users' files)."""
    text = json.dumps(_finite(value), separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
