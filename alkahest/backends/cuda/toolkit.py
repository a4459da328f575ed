"""Where the CUDA pieces alkahest needs come from: ``ptxas`` (to check and assemble PTX)
and ``libdevice.10.bc`` (the GPU math library linked into every kernel).

Searched in order: ``$CUDA_HOME`` (or ``$CUDA_PATH``), the PyPI wheels
``nvidia-cuda-nvcc-cu12`` / ``nvidia-cuda-nvcc`` (``pip install alkahest[cuda]``), then
``ptxas`` on ``PATH`` and its toolkit directory.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from pathlib import Path
from typing import List, Optional

from ...errors import CudaToolkitError

_INSTALL_HINT = "install the CUDA extra (pip install 'alkahest[cuda]') or set CUDA_HOME to a CUDA toolkit"


def _roots() -> List[Path]:
    """Candidate toolkit roots, most specific first."""
    roots = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            roots.append(Path(os.environ[var]))
    for package in ("nvidia.cuda_nvcc",):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            roots += [Path(p) for p in spec.submodule_search_locations]
    ptxas = shutil.which("ptxas")
    if ptxas:
        roots.append(Path(ptxas).resolve().parent.parent)
    return roots


@functools.lru_cache(maxsize=None)
def ptxas() -> Path:
    """The ``ptxas`` executable; raises :class:`CudaToolkitError` if none is found."""
    for root in _roots():
        candidate = root / "bin" / "ptxas"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise CudaToolkitError(f"ptxas was not found; {_INSTALL_HINT}")


@functools.lru_cache(maxsize=None)
def libdevice() -> Path:
    """``libdevice.10.bc``; raises :class:`CudaToolkitError` if none is found."""
    for root in _roots():
        candidate = root / "nvvm" / "libdevice" / "libdevice.10.bc"
        if candidate.is_file():
            return candidate
    raise CudaToolkitError(f"libdevice.10.bc was not found; {_INSTALL_HINT}")


def find_ptxas() -> Optional[Path]:
    """``ptxas`` if available, else None."""
    try:
        return ptxas()
    except CudaToolkitError:
        return None
