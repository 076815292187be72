"""`import minibert` is light: no torch, no transformers, no JIT compilation."""

import subprocess
import sys

CHECK = """
import sys
import minibert
from minibert import kernels
heavy = sorted(m for m in ("torch", "transformers", "tensorflow", "jax") if m in sys.modules)
assert not heavy, f"import minibert imported {heavy}"
from numba.core.registry import CPUDispatcher
jitted = {k: v for k, v in vars(kernels).items() if isinstance(v, CPUDispatcher)}
assert len(jitted) >= 3, f"expected the Numba kernels in minibert.kernels, found {sorted(jitted)}"
compiled = [k for k, v in jitted.items() if v.signatures]
assert not compiled, f"kernels compiled at import: {compiled}"
print("ok")
"""


def test_import_minibert_pulls_no_torch_and_compiles_nothing():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
