"""Where minibert's time goes: self time per function, for every public function of the given modules.

Nothing is hard-coded about minibert's functions: each public Python function defined in a profiled
module (minibert.model, minibert.kernels, minibert.fast, ... whatever exists) is wrapped with a
timer, and every reference to it is swapped for the wrapper while profiling: in the globals of every
loaded minibert module (so `linear(...)` inside model.py and `from .model import distilbert` in
modeling.py both hit the timer) and in the model object's attributes (e.g. the backend's Ops tuple,
which is swapped consistently everywhere, so identity tests on it still pass: the profiled forward
takes the same path as an unprofiled one).
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


class _Swapper:
    """Replaces objects (by identity) wherever minibert holds them, and puts them back.

    A NamedTuple holding a replaced function (such as the backend's kernels.Ops) is itself replaced by a copy
    with the wrapped fields, everywhere it is referenced: on the model and in module globals, including dict
    values such as kernels.BACKENDS. So an identity test like `model.ops is BACKENDS["numba"]` gives the same
    answer while profiling, and the profiled forward takes the same path as the unprofiled one."""

    def __init__(self, table: dict[int, tuple[object, object]]):
        self.table = dict(table)  # id(original) -> (original, replacement); originals kept alive
        self.saved: list[tuple[object, object, object, bool]] = []  # (container, key, original, is_dict)

    def add_tuple(self, value: object) -> None:
        if isinstance(value, tuple) and hasattr(value, "_replace") and id(value) not in self.table:
            changes = {f: self.table[id(v)][1] for f, v in zip(value._fields, value, strict=True)
                       if id(v) in self.table and self.table[id(v)][0] is v}
            if changes:
                self.table[id(value)] = (value, value._replace(**changes))

    def replacement(self, value: object) -> object | None:
        entry = self.table.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else None

    def swap_attrs(self, obj: object, items: list[tuple[str, object]]) -> None:
        for attr, value in items:
            new = self.replacement(value)
            if new is not None:
                self.saved.append((obj, attr, value, False))
                setattr(obj, attr, new)
            elif isinstance(value, dict):
                for key, v in list(value.items()):
                    new = self.replacement(v)
                    if new is not None:
                        self.saved.append((value, key, v, True))
                        value[key] = new

    def objects(self, obj: object, seen: set[int], depth: int = 3) -> Iterator[object]:
        """`obj` and the minibert objects reachable through its attributes."""
        if depth == 0 or id(obj) in seen or not hasattr(obj, "__dict__"):
            return
        seen.add(id(obj))
        yield obj
        for value in list(vars(obj).values()):
            if type(value).__module__.startswith("minibert"):
                yield from self.objects(value, seen, depth - 1)

    def restore(self) -> None:
        for container, key, value, is_dict in reversed(self.saved):
            if is_dict:
                container[key] = value
            else:
                setattr(container, key, value)
        self.saved.clear()


def _minibert_modules() -> list[ModuleType]:
    return [m for name, m in list(sys.modules.items())
            if m is not None and (name == "minibert" or name.startswith("minibert."))]


@contextlib.contextmanager
def instrumented(model: object, modules: list[ModuleType], timer: OpTimer) -> Iterator[list[str]]:
    """While active, every public function of `modules` is timed by `timer`. Yields the wrapped names."""
    table: dict[int, tuple[object, object]] = {}
    names = []
    for module in modules:
        short = module.__name__.removeprefix("minibert.")
        for name, fn in public_functions(module).items():
            table[id(fn)] = (fn, timer.wrap(f"{short}.{name}", fn))
            names.append(f"{short}.{name}")
    swapper = _Swapper(table)
    objects = list(swapper.objects(model, set()))
    targets = [(obj, list(vars(obj).items())) for obj in _minibert_modules() + objects]
    for _, items in targets:  # first find every NamedTuple that holds a wrapped function ...
        for _, value in items:
            for v in value.values() if isinstance(value, dict) else (value,):
                swapper.add_tuple(v)
    try:
        for obj, items in targets:  # ... then swap functions and those tuples everywhere at once
            swapper.swap_attrs(obj, items)
        yield names
    finally:
        swapper.restore()


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
