"""Every benchmark script still imports against today's package and its sibling scripts (a
setting that moves, as the per-dataset depths did into configs/paper/, must not leave a
script that fails only when someone runs it months later)."""

from __future__ import annotations

import importlib
import sys

import pytest

from conftest import REPO

SCRIPTS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_script_imports(name: str) -> None:
    """Each file imports; a script (not a module the others share) runs through ``main()``."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert module.__doc__, f"benchmarks/{name}.py says nothing of what it measures"
    if "__main__" in (REPO / "benchmarks" / f"{name}.py").read_text():
        assert callable(getattr(module, "main", None)), f"benchmarks/{name}.py has no main()"
