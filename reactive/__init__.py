"""reactive: a reactive runtime for widget-driven Jupyter dashboards.

The core (this package, minus ``reactive.integrations``) knows nothing of
kernels or widgets; hosts plug in through an executor, sinks and sources.
"""

from __future__ import annotations

__version__ = "0.1.0"
