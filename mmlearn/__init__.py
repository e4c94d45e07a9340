"""mmlearn: the helper package of a course on multi-modal networks.

The notebooks import it for machinery (data, loading models, plotting, exercises)
and write by hand only what each lesson is about. Every submodule is one idea of
the course; import the one you need, e.g. ``from mmlearn import shapes``.
"""

import os as _os

# Before anything imports torch: let an operation Apple's GPU lacks run on the CPU
# (PyTorch reads this variable once, at import). Harmless on other machines.
_os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

__version__ = "0.1.0"

from mmlearn.checkup import doctor  # noqa: E402  (mmlearn.doctor(): is this machine ready?)

__all__ = ["doctor", "__version__"]
