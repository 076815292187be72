"""Where minibert's time goes: self time per function, for every public function of the given modules.

Nothing is hard-coded about minibert's functions: each public Python function defined in a profiled
module (minibert.model, minibert.kernels, minibert.fast, ... whatever exists) is wrapped with a
timer, and every reference to it is swapped for the wrapper while profiling: in the globals of every
loaded minibert module (so `linear(...)` inside model.py and `from .model import distilbert` in
modeling.py both hit the timer) and in the model object's attributes (e.g. the backend's Ops tuple).
Public Numba-compiled functions are timed where Python calls them (jitted code calling them is compiled
in the warm-up call and keeps calling them directly). Time nobody's wrapper saw is reported as
"(unaccounted)", so a step that escapes the profile shows up instead of vanishing.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from types import ModuleType

DEFAULT_MODULES = ("minibert.modeling", "minibert.model", "minibert.fast", "minibert.kernels", "minibert.fast_kernels")


class OpTimer:
    """Exclusive (self) time per wrapped function: a wrapper's time minus its wrapped callees'."""

    def __init__(self) -> None:
        self.self_s: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[float] = []

    def wrap(self, name: str, fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            self._stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                children = self._stack.pop()
                self.self_s[name] += dt - children
                self.calls[name] += 1
                if self._stack:
                    self._stack[-1] += dt

        wrapped.__wrapped__ = fn
        wrapped.__name__ = getattr(fn, "__name__", name)
        return wrapped


def import_existing(names: tuple[str, ...] | list[str]) -> list[ModuleType]:
    """The modules among `names` that exist (minibert.fast may not, yet)."""
    out = []
    for name in names:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return out


def public_functions(module: ModuleType) -> dict[str, Callable]:
    """{name: function} for the functions defined in `module` whose names do not start with _: plain Python
    functions, and Numba-compiled ones (their `py_func` is defined there), which are timed where Python calls
    them. A jitted caller is unaffected: it was compiled, with its callees, in the warm-up call."""
    out = {}
    for name, obj in vars(module).items():
        fn = getattr(obj, "py_func", obj)  # a Numba dispatcher's Python source function
        if not name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
            out[name] = obj
    return out


def _swap_in_object(obj: object, swap: dict[int, Callable], saved: list, seen: set[int], depth: int = 3) -> None:
    """Replace wrapped functions held by `obj`'s attributes (directly, or as fields of a NamedTuple such as
    kernels.Ops), recursing into attributes that are minibert objects."""
    if depth == 0 or id(obj) in seen or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    for attr, value in list(vars(obj).items()):
        if id(value) in swap and callable(value):
            saved.append((obj, attr, value))
            setattr(obj, attr, swap[id(value)])
        elif isinstance(value, tuple) and hasattr(value, "_replace"):
            changes = {f: swap[id(v)] for f, v in zip(value._fields, value, strict=True) if id(v) in swap}
            if changes:
                saved.append((obj, attr, value))
                setattr(obj, attr, value._replace(**changes))
        elif type(value).__module__.startswith("minibert"):
            _swap_in_object(value, swap, saved, seen, depth - 1)


@contextlib.contextmanager
def instrumented(model: object, modules: list[ModuleType], timer: OpTimer) -> Iterator[list[str]]:
    """While active, every public function of `modules` is timed by `timer`. Yields the wrapped names."""
    wrapped: dict[int, Callable] = {}
    originals: dict[int, Callable] = {}
    names = []
    for module in modules:
        short = module.__name__.removeprefix("minibert.")
        for name, fn in public_functions(module).items():
            wrapped[id(fn)] = timer.wrap(f"{short}.{name}", fn)
            originals[id(fn)] = fn
            names.append(f"{short}.{name}")
    saved: list[tuple[object, str, object]] = []
    try:
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == "minibert" or mod_name.startswith("minibert.")):
                continue
            for attr, value in list(vars(mod).items()):
                if id(value) in wrapped and value is originals[id(value)]:
                    saved.append((mod, attr, value))
                    setattr(mod, attr, wrapped[id(value)])
        _swap_in_object(model, wrapped, saved, set())
        yield names
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)


def profile_calls(model: object, call: Callable[[], object], modules: list[ModuleType], calls: int
                  ) -> list[tuple[str, float, float]]:
    """[(function, ms per forward, calls per forward)], biggest first, then (unaccounted) and the total."""
    call()  # warm-up outside the profile
    timer = OpTimer()
    with instrumented(model, modules, timer):
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        total = time.perf_counter() - t0
    rows = [(k, v / calls * 1e3, timer.calls[k] / calls) for k, v in timer.self_s.items()]
    rows.sort(key=lambda r: -r[1])
    accounted = sum(r[1] for r in rows)
    rows.append(("(unaccounted: the model class, dataclasses, timer overhead)", total / calls * 1e3 - accounted, 1))
    rows.append(("total forward", total / calls * 1e3, 1))
    return rows


def profile_torch(ckpt, ids, mask, calls: int, top: int = 12) -> list[tuple[str, float, float]]:
    """torch-sdpa's own operator breakdown (torch.profiler, self CPU time), for comparison."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.inference_mode():
        model(input_ids=ids_t, attention_mask=mask_t)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                model(input_ids=ids_t, attention_mask=mask_t)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    return [(e.key, e.self_cpu_time_total / 1e3 / calls, e.count / calls) for e in events[:top]]
