"""While a learner's function runs for a check, the library's own answer is off limits.

A build exercise asks the learner to write, say, the contrastive loss. An answer that
only calls ``losses.clip_loss`` would pass any check that compares values, and teach
nothing. So a question names the functions that implement its answer (its
``forbidden`` list). While the learner's function runs, a profile hook on that thread
sees every call; a call of a forbidden function raises ``Delegated`` in the learner's
code and is written down, so an answer that catches the error still gets the verdict
"not allowed", with the name of the call.

The hook watches Python functions by their code object (so an alias, a
``functools.partial`` or a copy of the function object is caught too) and builtins
such as ``torch.nn.functional.cosine_similarity`` by identity; a method written in C,
such as ``torch.Tensor.softmax``, is caught on any tensor. A class in the list stands
for the ``__init__`` and ``forward``/``__call__`` it defines itself.

The same wrapper keeps the library whole: a learner's function that replaces a
function of mmlearn or torch (``dalle.causal_mask = ...``) has the change undone when
it returns, and the verdict says so.
"""

import inspect
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

WATCHED_MODULES = ("mmlearn", "torch", "torch.nn.functional", "numpy")


class Delegated(Exception):
    """A learner's answer called a function that implements the answer itself."""


def _name(fn: Any) -> str:
    """How the learner would write it: ``mmlearn.losses.clip_loss``, ``torch.softmax``."""
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    if isinstance(fn, types.BuiltinFunctionType) and (module.startswith("torch")
                                                      or module in ("", "builtins")):
        return f"torch.{fn.__name__}"  # torch._C._VariableFunctions.softmax is torch.softmax
    if isinstance(fn, (types.MethodDescriptorType, types.WrapperDescriptorType)) and \
            fn.__objclass__.__name__ == "TensorBase":
        return f"torch.Tensor.{fn.__name__}"
    if module.startswith("torch._C") or module in ("", "builtins"):
        module = "torch"
    return f"{module}.{qualname}" if module else qualname


C_METHODS = (types.MethodDescriptorType, types.WrapperDescriptorType)


def _watch_targets(forbidden: Iterable[Any]) -> tuple[dict, dict, dict]:
    """The code objects, builtins and C methods to refuse, each mapped to the name shown."""
    codes: dict = {}
    builtins: dict = {}
    methods: dict = {}  # method name -> [(class, name shown)]
    for item in forbidden:
        if isinstance(item, C_METHODS):
            methods.setdefault(item.__name__, []).append((item.__objclass__, _name(item)))
            continue
        name = _name(item)
        # a class: only what it defines itself (nn.Module.__call__ serves every module)
        parts = ([vars(item).get(n) for n in ("__init__", "forward", "__call__")]
                 if isinstance(item, type) else [item])
        for part in parts:
            part = inspect.unwrap(getattr(part, "__func__", part)) if part else None
            code = getattr(part, "__code__", None)
            if code is not None:
                codes[code] = name
            elif part is not None and callable(part) and not isinstance(part, type):
                try:
                    builtins[part] = name
                except TypeError:  # not hashable: cannot be one we know
                    pass
    return codes, builtins, methods


@dataclass
class Watch:
    """What one check forbids, and the forbidden calls the learner's code made."""

    forbidden: tuple = ()
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._codes, self._builtins, self._methods = _watch_targets(self.forbidden)

    def hook(self, frame, event: str, arg: Any) -> None:
        """A ``sys.setprofile`` hook: refuse (and write down) a forbidden call."""
        name = None
        if event == "call":
            name = self._codes.get(frame.f_code)
        elif event == "c_call":
            try:
                name = self._builtins.get(arg)
            except TypeError:
                name = None
            if name is None and self._methods:
                owner = getattr(arg, "__self__", None)
                for cls, shown in self._methods.get(getattr(arg, "__name__", ""), ()):
                    if isinstance(owner, cls):
                        name = shown
        if name is not None:
            self.calls.append(name)
            raise Delegated(f"{name} is not allowed in this answer")

    def install(self) -> None:
        """Watch the calling thread (call it first thing in the thread that runs the learner)."""
        if self._codes or self._builtins or self._methods:
            sys.setprofile(self.hook)

    @staticmethod
    def remove() -> None:
        sys.setprofile(None)

    def verdict(self) -> str | None:
        """The message for the learner when a forbidden call was made, else None."""
        if not self.calls:
            return None
        return (f"your answer calls `{self.calls[0]}`, which already does what this question "
                f"asks you to write. Write it yourself with basic torch operations.")


def library_snapshot() -> dict[str, dict[str, Any]]:
    """The functions and classes of mmlearn, torch and numpy, module by module."""
    snapshot = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name in WATCHED_MODULES
                                  or module_name.startswith("mmlearn.")):
            continue
        snapshot[module_name] = {key: value for key, value in vars(module).items()
                                 if callable(value)}
    return snapshot


def restore_library(snapshot: dict[str, dict[str, Any]]) -> list[str]:
    """Put back every function or class a learner's code replaced or deleted; their names."""
    changed = []
    for module_name, functions in snapshot.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        current = vars(module)
        for key, value in functions.items():
            if current.get(key, None) is not value:
                setattr(module, key, value)
                changed.append(f"{module_name}.{key}")
    return changed


def guarded_call(fn: Callable, args: tuple, kwargs: dict, watch: Watch | None) -> Any:
    """``fn(*args, **kwargs)`` on this thread, watched, with the library restored after."""
    snapshot = library_snapshot()
    if watch is not None:
        watch.install()
    try:
        return fn(*args, **kwargs)
    finally:
        if watch is not None:
            watch.remove()
        replaced = restore_library(snapshot)
        if replaced:
            raise LibraryChanged(replaced)


class LibraryChanged(Exception):
    """A learner's function replaced library functions (now put back)."""

    def __init__(self, names: list[str]):
        self.names = names
        shown = ", ".join(f"`{n}`" for n in names[:3]) + (" ..." if len(names) > 3 else "")
        super().__init__(f"your function replaced {shown}. The library has been put back; "
                         f"define your own function instead of changing the library's.")
