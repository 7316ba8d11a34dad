import gc

import jax
import pytest

# Every correctness test runs in float64 (DESIGN.md section 2).
jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled executables after each test module.

    Every executable XLA compiles for the CPU keeps memory mappings of its own; the
    whole suite compiles thousands. Without this, one pytest process reached 65,383
    mappings at 92% of the suite, against Linux's default ``vm.max_map_count`` of 65,530,
    and XLA crashed there with a segmentation fault while compiling (three full runs on
    2026-11-23, each in tests/test_vmap.py). Tests within a module still share their
    compilations (the no-recompilation tests count within one module).
    """
    yield
    jax.clear_caches()
    gc.collect()
