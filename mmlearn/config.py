"""Settings shared by the whole package: the offline switch, the device, the seed.

Everything that depends on the environment is read here, in one place, so a
learner can see at a glance what changes mmlearn's behaviour:

- ``MMLEARN_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``): never touch the network.
- ``MMLEARN_DEVICE=cpu|cuda|mps``: run on that device instead of the best one found.
- ``MEM_LIMIT`` and ``CPU_LIMIT`` (set by mybinder.org), and the cgroup limits of a
  container: the memory a pretrained model may use, and how many threads torch uses.
"""

import contextlib
import math
import os
import random
import sys
import warnings

import numpy as np
import torch

from mmlearn import checks

OFFLINE_VARIABLES = ("MMLEARN_OFFLINE", "HF_HUB_OFFLINE")
DEVICE_VARIABLE = "MMLEARN_DEVICE"
DEVICE_KINDS = ("cuda", "mps", "cpu")
# PyTorch reads this once, when torch is imported: with it, an operation that Apple's GPU
# backend lacks runs on the CPU instead of raising. mmlearn/__init__.py sets it early.
MPS_FALLBACK_VARIABLE = "PYTORCH_ENABLE_MPS_FALLBACK"


def is_offline() -> bool:
    """True when the learner (or CI) asked mmlearn never to touch the network.

    Set ``MMLEARN_OFFLINE=1`` (mmlearn's own switch) or ``HF_HUB_OFFLINE=1``
    (huggingface_hub's, which open_clip uses) before starting the kernel.
    """
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in OFFLINE_VARIABLES)


def mps_available() -> bool:
    """True on a Mac whose PyTorch can use the Apple GPU (Metal Performance Shaders)."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def best_device_kind() -> str:
    """The fastest device this machine has: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return "cuda"
    if mps_available():
        return "mps"
    return "cpu"


def _check_present(kind: str) -> None:
    present = {"cuda": torch.cuda.is_available, "mps": mps_available, "cpu": lambda: True}
    if not present[kind]():
        raise ValueError(f"device {kind!r} was asked for, but this machine has none; "
                         f"pass device='cpu' (or unset {DEVICE_VARIABLE}).")


def _warn_if_mps_cannot_fall_back(kind: str) -> None:
    too_late = getattr(sys.modules.get("mmlearn"), "MPS_FALLBACK_TOO_LATE", False)
    if kind == "mps" and (too_late or os.environ.get(MPS_FALLBACK_VARIABLE) != "1"):
        warnings.warn(f"Apple GPU chosen, but {MPS_FALLBACK_VARIABLE}=1 was not set before "
                      "torch was imported, so an operation the GPU lacks will raise instead of "
                      "running on the CPU. Import mmlearn before torch, or set the variable "
                      "before starting Jupyter.", stacklevel=3)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on.

    In order: the ``device`` argument; else the ``MMLEARN_DEVICE`` environment variable;
    else the best device found (CUDA, then Apple's MPS, then CPU). ``"auto"`` means
    "the best device found". A device this machine lacks raises a ValueError.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device is None:
        device = os.environ.get(DEVICE_VARIABLE, "").strip() or "auto"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', not {type(device).__name__}.")
    name = device.strip().lower()
    if name == "auto":
        name = best_device_kind()
    kind = name.split(":")[0]
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device {device!r}: use one of 'auto', 'cuda', 'mps', 'cpu' "
                         f"(or 'cuda:1' for a second GPU).")
    _check_present(kind)
    _warn_if_mps_cannot_fall_back(kind)
    return torch.device(name)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's weights are on: where its inputs must go (the CPU if it has none)."""
    return next(model.parameters(), torch.empty(0)).device


def describe_device(device: str | torch.device | None = None) -> str:
    """One line for a lesson's setup cell: which device runs the lesson, and why."""
    chosen = pick_device(device)
    asked = device if device is not None else os.environ.get(DEVICE_VARIABLE, "").strip()
    if asked and str(asked).lower() != "auto":
        why = "asked for" + (f" by {DEVICE_VARIABLE}" if device is None else "")
    else:
        why = {"cuda": "an NVIDIA GPU was found",
               "mps": "an Apple GPU was found",
               "cpu": "no GPU was found"}[chosen.type]
    return f"Device: {chosen} ({why}; set {DEVICE_VARIABLE}=cpu|cuda|mps to change it)"


def own_cgroup_files(v2_name: str, v1_controller: str, v1_name: str,
                     proc_file: str = "/proc/self/cgroup",
                     root: str = "/sys/fs/cgroup") -> tuple[str, ...]:
    """The files where Linux keeps a limit of this process's control group (v2, then v1).

    A container sees its own group at the top of /sys/fs/cgroup; a process put in a group
    on a machine (as CI's Binder simulation does) finds its group's path in /proc/self/cgroup.
    Both places are returned; files that don't exist are skipped by the readers.
    """
    v2_path, v1_path = "/", "/"
    try:
        for line in open(proc_file).read().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                v2_path = path
            elif v1_controller in controllers.split(","):
                v1_path = path
    except (OSError, ValueError):
        pass
    return tuple(dict.fromkeys([f"{root}{v2_path.rstrip('/')}/{v2_name}", f"{root}/{v2_name}",
                                f"{root}/{v1_controller}{v1_path.rstrip('/')}/{v1_name}",
                                f"{root}/{v1_controller}/{v1_name}"]))


def _read(name: str) -> str | None:
    try:
        return open(name).read().strip()
    except OSError:
        return None


def memory_limit_bytes(cgroup_files: tuple[str, ...] | None = None) -> int | None:
    """How much memory this kernel may use, when something limits it; else None.

    mybinder.org sets ``MEM_LIMIT`` (2 GB there) and kills a kernel above it; containers
    set a cgroup limit. A machine's own RAM is not a limit here: the OS can swap.
    """
    if cgroup_files is None:
        cgroup_files = own_cgroup_files("memory.max", "memory", "memory.limit_in_bytes")
    limits = []
    if os.environ.get("MEM_LIMIT", "").strip().isdigit():
        limits.append(int(os.environ["MEM_LIMIT"]))
    for text in map(_read, cgroup_files):
        if text and text.isdigit() and int(text) < 2**60:  # "max", or v1's huge "no limit"
            limits.append(int(text))
    return min(limits) if limits else None


def cpu_limit(v2_files: tuple[str, ...] | None = None,
              v1_files: tuple[tuple[str, str], ...] | None = None) -> float | None:
    """How many CPUs' worth of time this process may use, when a quota says; else None.

    mybinder.org sets ``CPU_LIMIT`` (1 there) and a CFS quota; cgroup v2 writes the quota
    as "quota period" in cpu.max, v1 in cpu.cfs_quota_us and cpu.cfs_period_us.
    """
    if v2_files is None:
        v2_files = own_cgroup_files("cpu.max", "cpu", "cpu.max")[:2]
    if v1_files is None:
        quotas = own_cgroup_files("-", "cpu", "cpu.cfs_quota_us")[2:]
        v1_files = tuple((q, q.replace("cpu.cfs_quota_us", "cpu.cfs_period_us")) for q in quotas)
    limits = []
    try:
        limits.append(float(os.environ.get("CPU_LIMIT", "")))
    except ValueError:
        pass
    for text in map(_read, v2_files):
        quota, _, period = (text or "").partition(" ")
        if quota.isdigit() and period.isdigit():
            limits.append(int(quota) / int(period))
    for quota_file, period_file in v1_files:
        quota, period = _read(quota_file), _read(period_file)
        if quota and period and quota.isdigit() and period.isdigit():  # "-1": no quota
            limits.append(int(quota) / int(period))
    limits = [limit for limit in limits if limit > 0 and math.isfinite(limit)]
    return min(limits) if limits else None


def follow_cpu_limit() -> None:
    """Use no more torch threads than the CPU quota allows (Binder: one).

    torch sizes its thread pool from the machine's cores, which a quota does not hide: on
    a 1-CPU quota, extra threads only queue for CPU time the quota does not give, and
    training gets slower, not faster. mmlearn calls this when it is imported.
    """
    limit = cpu_limit()
    if limit is not None and torch.get_num_threads() > limit:
        torch.set_num_threads(max(1, math.floor(limit)))


follow_cpu_limit()


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that re-running a notebook gives the same numbers."""
    seed = checks.seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def one_cpu_thread():
    """Run torch on a single CPU thread inside the block, then restore the setting.

    For work that is many small steps: splitting a tiny matrix product across threads
    saves microseconds, and waiting for a second thread that the operating system gave to
    another program costs milliseconds (tiny DALL-E sampling; figures in
    benchmarks/results/recorded.md). Also where other threads already hold the cores
    (the selection between numpy's multiplies in ``brute_force.top_k_many``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
