"""The demo: a miniature model suite trained on CPU (``_zoo``) and the whole method run on it (``_run``).

``loglik-map demo`` (``python -m loglik_map demo``, ``make demo``) calls :func:`run_demo`. This
package may import any other; nothing but the command line imports it.
"""

from __future__ import annotations

from ._run import DemoResult, run_demo
from ._zoo import Zoo, ZooConfig, build_zoo, default_zoo_dir

__all__ = ["DemoResult", "Zoo", "ZooConfig", "build_zoo", "default_zoo_dir", "run_demo"]
