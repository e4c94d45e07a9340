"""mmlearn: the helper package of a course on multi-modal networks.

The notebooks import it for machinery (data, loading models, plotting, exercises)
and write by hand only what each lesson is about. Every submodule is one idea of
the course; import the one you need, e.g. ``from mmlearn import shapes``.
"""

import os as _os
import sys as _sys

# Let an operation Apple's GPU lacks run on the CPU. PyTorch reads this variable once, when
# torch is first imported, so it only helps if mmlearn comes first (each lesson's first cell
# sets it too). Harmless on other machines. mmlearn.config warns when it came too late.
MPS_FALLBACK_TOO_LATE = ("torch" in _sys.modules
                         and _os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK") != "1")
_os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

from mmlearn.doctor import doctor, mmlearn_version  # noqa: E402  (is this machine ready?)

__version__ = mmlearn_version()  # from pyproject.toml, through the installed metadata

__all__ = ["doctor", "__version__"]
