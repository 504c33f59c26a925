"""Tests of the scripts under benchmarks/ (a folder of scripts, not a package)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@contextlib.contextmanager
def benchmark_script(name: str) -> Iterator[ModuleType]:
    """The script ``benchmarks/<name>.py`` loaded as a module, its folder importable (scripts
    import their helpers, such as ``_docs``) while the block runs."""
    sys.path.insert(0, str(BENCHMARKS))
    module_name = f"bench_{name}"
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(module_name, None)
        sys.path.remove(str(BENCHMARKS))
