# Runs in every IPython kernel started with IPYTHONDIR=tests/accelerator/ipython: the
# emulated CUDA device (tests/accelerator/emulated.py) is on for the kernel's whole life,
# so a lesson runs "on CUDA" with nothing in the notebook. Prints nothing (nbval compares
# some cells' outputs) and leaves no names in the notebook's namespace.


def _enable_emulated_accelerator(startup_file):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(startup_file).resolve().parents[3] / "emulated.py"
    spec = importlib.util.spec_from_file_location("emulated_accelerator", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.enable()


_enable_emulated_accelerator(__file__)
del _enable_emulated_accelerator
