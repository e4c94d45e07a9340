"""An emulated CUDA device, so that CI without a GPU catches device mistakes.

Learners run the lessons on CUDA (Colab) or Apple's MPS, where a CPU tensor handed to a
model on the GPU raises. On a CPU-only machine such a mistake is invisible: everything is
on the CPU. While this emulation is on, torch reports one CUDA device, so
``mmlearn.config.pick_device()`` picks "cuda"; tensors and modules moved there stay on
the CPU but are tagged, report ``device == cuda:0`` and ``is_cuda``, pass their tag on to
every result, and raise PyTorch's own errors when they meet untagged CPU tensors in one
call, or when ``.numpy()`` is asked of them.

It mirrors PyTorch's exceptions to avoid false alarms: 0-dim CPU tensors may join cuda
ones, ``copy_`` crosses devices, CPU index tensors may index a cuda tensor, and
``.to`` / ``.cpu`` / ``.cuda`` move tensors.

A generator says which device it is on, and drawing random numbers for a tensor on
the other device raises, as on a GPU.

Left out, compared with a real GPU: speed, memory limits and out-of-memory errors,
asynchronous execution (streams, non_blocking, pinned memory, CUDA graphs), numerics
(TF32, cuDNN kernels, non-determinism), CUDA's random numbers (a cuda Generator draws
the CPU's numbers for a seed), several GPUs (every cuda index is cuda:0), a tensor's
``repr`` (no ``device='cuda:0'``), torch.save of a cuda tensor (saved as a CPU one), MPS's
own limits (no float64, missing operations), and mistakes inside code that never passes
through Python's torch calls (only what ``TorchFunctionMode`` sees is checked; a
tensor made by C++ alone, as autograd's, gets its tag when Python reads it). Use::

    with emulated.cuda():        # or emulated.enable() ... emulated.disable()
        ...
"""

import contextlib
import types
import weakref

import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")
SAME_DEVICE = ("Expected all tensors to be on the same device, but found at least two "
               "devices, cuda:0 and cpu!")
NO_NUMPY = ("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy "
            "the tensor to host memory first.")

_tagged: dict[int, weakref.ref] = {}  # id(tensor) -> weakref; not in the tensor's __dict__,
#                                       which torch.save would write into checkpoints


def on_cuda(t) -> bool:
    """True for a tensor tagged as living on the emulated GPU."""
    ref = _tagged.get(id(t))
    return ref is not None and ref() is t


def _tag(t: torch.Tensor, cuda: bool) -> torch.Tensor:
    key = id(t)
    if not cuda:
        _tagged.pop(key, None)
    elif not on_cuda(t):
        def forget(ref, key=key):
            if _tagged.get(key) is ref:
                del _tagged[key]
        _tagged[key] = weakref.ref(t, forget)
    return t


def _is_cuda(device) -> bool:
    if isinstance(device, int):  # .to(0) and device=0 mean cuda:0
        return True
    return isinstance(device, (str, torch.device)) and torch.device(device).type == "cuda"


def _tensors(tree):
    return [x for x in pytree.tree_leaves(tree) if isinstance(x, torch.Tensor)]


def _check_same_device(tensors) -> None:
    cuda = [t for t in tensors if on_cuda(t)]
    if cuda and any(not on_cuda(t) and t.dim() > 0 and t.device == CPU for t in tensors):
        raise RuntimeError(SAME_DEVICE)


_T = torch.Tensor
_GETTERS = {_T.device: lambda t: CUDA, _T.is_cuda: lambda t: True, _T.is_cpu: lambda t: False}
_NO_NUMPY = {_T.numpy, _T.__array__}
# PyTorch lets these mix devices: moves, copies, a cuda tensor indexed by CPU indices, and
# the bookkeeping nn.Module.to does (param.data = moved).
_MIXES = {_T.to, _T.cpu, _T.cuda, _T.copy_, _T.type_as, _T.__getitem__, _T.__setitem__,
          _T.index_put_, _T.index_put, torch._has_compatible_shallow_copy_type,
          torch._C._nn._parse_to}
_INDEXING = {_T.__getitem__, _T.__setitem__, _T.index_put_, _T.index_put}


def _move(func, args, kwargs):
    """Tensor.to / .cuda / .cpu: the real call with the CPU as target, then (un)tag."""
    self, rest = args[0], list(args[1:])
    if func is _T.cpu or func is _T.cuda:
        target = func is _T.cuda
    elif rest and isinstance(rest[0], torch.Tensor):  # .to(other): other's device and dtype
        target, rest[0] = on_cuda(rest[0]), rest[0].dtype
    else:
        device = kwargs.get("device", rest[0] if rest and not isinstance(rest[0], torch.dtype)
                            else None)
        target = on_cuda(self) if device is None else _is_cuda(device)
        if "device" in kwargs:
            kwargs = {**kwargs, "device": CPU}
        elif device is not None:
            rest[0] = CPU
    out = self if func is _T.cuda else func(self, *rest, **kwargs)
    if out is self and target != on_cuda(self):  # a move to another device is a copy
        out = self.clone()
    return _tag(out, target)


class EmulatedCuda(TorchFunctionMode):
    """Sees every torch call while on: reports, checks and passes on the cuda tags."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__get__" and getattr(func, "__self__", None) in _GETTERS and on_cuda(args[0]):
            return _GETTERS[func.__self__](args[0])  # .device, .is_cuda, .is_cpu
        if func in _NO_NUMPY and on_cuda(args[0]):
            raise TypeError(NO_NUMPY)
        if func in (_T.to, _T.cuda, _T.cpu):
            return _move(func, args, kwargs)
        tensors = _tensors((args, kwargs))
        indices = _tensors(args[1:2]) if func in _INDEXING else []
        if indices and not on_cuda(args[0]) and any(map(on_cuda, indices)):
            raise RuntimeError("indices should be either on cpu or on the same device as "
                               "the indexed tensor (cpu)")
        if func not in _MIXES and name != "__set__":
            _check_same_device(tensors)
        target = any(map(on_cuda, tensors))  # where the result lives: the inputs' device ...
        if kwargs.get("device") is not None and func is not torch._C._nn._parse_to:
            target = _is_cuda(kwargs["device"])  # ... unless a factory says (device="cuda")
            kwargs = {**kwargs, "device": CPU}
        if kwargs.get("generator") is not None:
            _check_generator(kwargs["generator"], target)
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and any(out is t for t in tensors) and (
                on_cuda(out) != target):  # torch.as_tensor(x, device=...) moved x: a copy
            out = out.clone()
        if target:
            inputs = {id(t) for t in tensors}
            for t in _tensors(out):
                if id(t) not in inputs:  # an input given back (in place, copy_) keeps its tag
                    _tag(t, True)
        return out


# --- torch.cuda, torch.Generator and nn.Module: what needs more than the mode -----------

class _AnyGenerator(type(torch.Generator)):
    def __instancecheck__(cls, obj):  # torch.default_generator is a Generator too
        return isinstance(obj, torch._C.Generator)


class _Generator(torch.Generator, metaclass=_AnyGenerator):
    """torch.Generator(device="cuda") makes a CPU generator that says it is on cuda:0."""

    def __new__(cls, device="cpu"):
        generator = super().__new__(cls, "cpu")
        generator.on_cuda = _is_cuda(device)
        return generator

    @property
    def device(self):
        return CUDA if self.on_cuda else CPU


def _check_generator(generator, cuda: bool) -> None:
    """PyTorch draws a tensor's random numbers with a generator on the tensor's device."""
    if isinstance(generator, torch.Generator) and getattr(generator, "on_cuda", False) != cuda:
        want, found = ("cuda", "cpu") if cuda else ("cpu", "cuda")
        raise RuntimeError(f"Expected a '{want}' device type for generator but found '{found}'")


def _module_to(module, *args, **kwargs):
    """nn.Module.to: the real call with the CPU as target, then (un)tag its tensors.

    (Module.to keeps its Parameter objects and swaps their .data, so tags go on after.)
    """
    device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
    target = None if device is None else _is_cuda(device)
    if args and isinstance(args[0], torch.Tensor):  # .to(other): other's device
        target = on_cuda(args[0])
    _REAL["Module.to"](module, device=None if target is None else CPU, dtype=dtype,
                       non_blocking=non_blocking, memory_format=memory_format)
    if target is not None:
        for t in [*module.parameters(), *module.buffers()]:
            _tag(t, target)
            if t.grad is not None:
                _tag(t.grad, target)
    return module


def _parameter_new(cls, data=None, requires_grad=True):
    """nn.Parameter(t) wraps t without a call the mode sees: the tag goes on here."""
    return _tag(_REAL["Parameter.__new__"](cls, data, requires_grad), on_cuda(data))


_STREAM = types.SimpleNamespace(is_capturing=lambda: False, synchronize=lambda: None)
_FAKES = {
    (torch.cuda, "is_available"): lambda: True,
    (torch.cuda, "device_count"): lambda: 1,
    (torch.cuda, "current_device"): lambda: 0,
    (torch.cuda, "get_device_name"): lambda device=None: "Emulated CUDA (a tagged CPU)",
    (torch.cuda, "synchronize"): lambda device=None: None,
    (torch.cuda, "manual_seed"): lambda seed: None,
    (torch.cuda, "manual_seed_all"): lambda seed: None,
    (torch.cuda, "get_rng_state"): lambda device="cuda": torch.get_rng_state(),
    (torch.cuda, "set_rng_state"): lambda state, device="cuda": None,  # torch.random.fork_rng
    (torch.cuda, "empty_cache"): lambda: None,
    (torch.cuda, "memory_allocated"): lambda device=None: 0,
    (torch.cuda, "max_memory_allocated"): lambda device=None: 0,
    (torch.cuda, "reset_peak_memory_stats"): lambda device=None: None,
    (torch.accelerator, "current_device_index"): lambda: 0,
    (torch.accelerator, "current_stream"): lambda device=None: _STREAM,  # optimizers ask
    (torch.accelerator, "synchronize"): lambda device=None: None,
    (torch, "Generator"): _Generator,
    (torch.nn.Module, "to"): _module_to,
    (torch.nn.Module, "cuda"): lambda module, device=None: module.to(CUDA),
    (torch.nn.Module, "cpu"): lambda module: module.to(CPU),
    (torch.nn.Parameter, "__new__"): staticmethod(_parameter_new),
}
_REAL: dict = {}
_mode: EmulatedCuda | None = None


def enable() -> None:
    """Turn the emulated GPU on (for the rest of the process, or until disable())."""
    global _mode
    if _mode is not None:
        return
    for (owner, name), fake in _FAKES.items():
        _REAL[f"{owner.__name__}.{name}"] = vars(owner)[name]
        setattr(owner, name, fake)
    _mode = EmulatedCuda()
    _mode.__enter__()


def disable() -> None:
    """Turn it off: torch.cuda, torch.Generator and nn.Module get their own functions back."""
    global _mode
    if _mode is None:
        return
    _mode.__exit__(None, None, None)
    _mode = None
    for owner, name in _FAKES:
        setattr(owner, name, _REAL.pop(f"{owner.__name__}.{name}"))
    _tagged.clear()


def is_enabled() -> bool:
    return _mode is not None


@contextlib.contextmanager
def cuda():
    """``with cuda(): ...`` runs the block with the emulated GPU on."""
    enable()
    try:
        yield
    finally:
        disable()
