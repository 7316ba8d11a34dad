"""Paths split over devices and rows split over devices.

Multi-device behaviour runs once, in a subprocess with four host CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``); the single-device tests check
that the same entry points run unchanged on this process's one device.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import cvxnn_jax as cn

from reference import planted_relu_problem

TESTS = Path(__file__).resolve().parent

MULTI_DEVICE_SCRIPT = textwrap.dedent(
    """
    import re
    import warnings
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec
    import cvxnn_jax as cn
    from cvxnn_jax._devices import ROWS_AXIS
    from reference import planted_relu_problem

    warnings.simplefilter("error")
    assert len(jax.devices()) == 4, jax.devices()

    def close(a, b, what):
        for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            scale = max(float(jnp.max(jnp.abs(leaf_b))), 1e-300)
            error = float(jnp.max(jnp.abs(leaf_a - leaf_b))) / scale
            assert error <= 1e-8, (what, error)

    X, y = planted_relu_problem(0, n=64, d=4)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 12)
    options = dict(gates=gates, tol=1e-10, max_steps=100_000)

    # The path split over four devices: equal to the single-device path, sharded. (The
    # lanes of a vmapped path are independent, so the first six lanes of the path over
    # eight lambdas are the path over the first six.)
    lams8 = np.geomspace(1e-1, 1e-3, 8)
    single = cn.fit_path(X, y, lams8, **options)
    for num_lams in (8, 6):
        lams = lams8[:num_lams]
        sharded = cn.fit_path_sharded(X, y, lams, **options)
        close(sharded.weights, single.weights[:num_lams], "path weights")
        close(sharded.objective, single.objective[:num_lams], "path objective")
        spec = PartitionSpec("path") if num_lams % 4 == 0 else PartitionSpec()
        for leaf in jax.tree.leaves(sharded):
            assert leaf.sharding.spec == spec, (num_lams, leaf.sharding)
            assert len(leaf.sharding.device_set) == 4
        if num_lams == 8:  # each device holds its own two lambdas
            shard = sharded.objective.addressable_shards[1]
            assert shard.data.shape == (2,)
            close(shard.data, single.objective[2:4], "shard of device 1")
    # One lane at a time within each device's chunk: still the same independent solves.
    one_lane = cn.fit_path_sharded(X, y, lams8, lanes=1, **options)
    close(one_lane.weights, single.weights, "path weights, one lane")
    assert one_lane.objective.sharding.spec == PartitionSpec("path")
    # Warm-started: each device warm-starts within its chunk (different starting points
    # from the single-device path), so equal within the certified tolerance.
    warm = cn.fit_path_sharded(X, y, lams8, warm_start=True, **options)
    np.testing.assert_allclose(warm.objective, single.objective, rtol=1e-9)
    assert warm.objective.sharding.spec == PartitionSpec("path")

    # Rows split over four devices: the same iterates as fit, replicated output.
    for model, extra in (("gated_relu", {}),
                         ("relu", dict(solver="admm", tol=1e-6, feasibility_tol=1e-8))):
        kwargs = dict(options, model=model, **extra)
        reference = cn.fit(X, y, 1e-2, **kwargs)
        solution = cn.fit_data_parallel(X, y, 1e-2, **kwargs)
        close(solution.weights, reference.weights, model + " rows weights")
        close(solution.objective, reference.objective, model + " rows objective")
        # The same iterates: equal after a fixed budget too. (The converged step counts
        # may differ: the sums are taken in another order, and where the Newton polish's
        # CG stops depends on their round-off; measured 326 vs 507 steps at tol 1e-10.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cn.ConvergenceWarning)
            budget = dict(kwargs, max_steps=200)
            early = cn.fit_data_parallel(X, y, 1e-2, **budget)
            early_reference = cn.fit(X, y, 1e-2, **budget)
        assert int(early.num_steps) == int(early_reference.num_steps) == 200
        close(early.weights, early_reference.weights, model + " rows weights, 200 steps")
        for leaf in jax.tree.leaves(solution):
            assert leaf.sharding.spec == PartitionSpec() and len(leaf.sharding.device_set) == 4

    # The compiled row-parallel solve never gathers X, and every reduction is of a
    # (d, P)-sized array or smaller: no n-sized array crosses devices.
    from cvxnn_jax._devices import _replicated_solve, make_mesh
    from cvxnn_jax._fit import _prepare, check_lam
    from jax.sharding import NamedSharding
    mesh = make_mesh(None, ROWS_AXIS)
    setup = _prepare(X, y, 1e-2, check_lam, gates=gates, model="gated_relu", loss="squared",
                     solver=None, tol=1e-10, max_steps=1000, bias=False, key=None,
                     activation="relu", leaky_slope=0.01, feasibility_tol=None)
    rows = NamedSharding(mesh, PartitionSpec(ROWS_AXIS))
    setup = setup._replace(X=jax.device_put(setup.X, rows), y=jax.device_put(setup.y, rows),
                           tol=jnp.asarray(1e-10), feasibility_tol=jnp.asarray(1e-10),
                           max_steps=jnp.asarray(1000, jnp.int32))
    solve = jax.jit(lambda X, y: _replicated_solve(setup._replace(X=X, y=y, lam=None),
                                                   jnp.asarray(1e-2), mesh))
    text = solve.lower(setup.X, setup.y).compile().as_text()
    assert "all-gather" not in text and "all-to-all" not in text
    reduced = re.findall(r"= \\(?([^)]*?)\\)? all-reduce\\(", text)
    assert reduced, "no all-reduce: the rows were not split"
    d, P = X.shape[1], gates.shape[1]
    for shapes in reduced:
        for dims in re.findall(r"f64\\[([0-9,]*)\\]", shapes):
            size = int(np.prod([int(s) for s in dims.split(",") if s])) if dims else 1
            assert size <= d * P, shapes
    try:
        cn.fit_data_parallel(X[:63], y[:63], 1e-2, gates=gates)
    except ValueError as error:
        assert "does not split evenly over 4 devices" in str(error)
    else:
        raise AssertionError("63 rows on 4 devices were accepted")
    print("MULTI-DEVICE OK")
    """
)


def test_four_host_devices_in_a_subprocess():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", MULTI_DEVICE_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "MULTI-DEVICE OK" in result.stdout, (
        result.stdout[-3000:] + result.stderr[-3000:])


def test_one_device_path_and_rows():
    # The problem, lambdas and options of tests/test_path.py, so that the references
    # (fit_path, fit) reuse their compiled solves when the files run together.
    X, y = planted_relu_problem(0, n=60, d=4)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 12)
    lams = np.array([3e-3, 1e-1, 1e-2, 3e-2, 1e-3, 3e-4])
    options = dict(gates=gates, tol=1e-10, max_steps=100_000)
    path = cn.fit_path_sharded(X, y, lams, devices=jax.devices()[:1], **options)
    np.testing.assert_allclose(path.weights, cn.fit_path(X, y, lams, **options).weights,
                               rtol=0, atol=1e-12)
    solution = cn.fit_data_parallel(X, y, lams[0], **options)
    reference = cn.fit(X, y, lams[0], **options)
    np.testing.assert_allclose(solution.weights, reference.weights, rtol=0, atol=1e-12)
    assert int(solution.num_steps) == int(reference.num_steps)
    with pytest.raises(ValueError, match="devices is empty"):
        cn.fit_data_parallel(X, y, 1e-2, devices=[], **options)
