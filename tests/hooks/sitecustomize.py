"""Loaded by every Python process started with tests/hooks on PYTHONPATH (conftest.run_xlt does
so when a test injects a fault): wraps xlt's functions as their modules are imported
(xlt_faults.PATCHES). Does nothing without XLT_FAULT."""
import os
import sys

if os.environ.get("XLT_FAULT"):
    import importlib.abc

    import xlt_faults

    class _PatchAfterImport(importlib.abc.MetaPathFinder):
        """Finds a patched module through the other finders, then patches it once executed."""

        def find_spec(self, name, path, target=None):
            if name not in xlt_faults.PATCHES:
                return None
            spec = next(filter(None, (f.find_spec(name, path, target) for f in sys.meta_path
                                      if f is not self and hasattr(f, "find_spec"))), None)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_patch(module):
                exec_module(module)
                xlt_faults.PATCHES[name](module)

            spec.loader.exec_module = exec_and_patch
            return spec

    sys.meta_path.insert(0, _PatchAfterImport())
