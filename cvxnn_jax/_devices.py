"""Spreading work over devices: a path split over devices, and rows split over devices.

Two layouts (STYLE.md, "Devices"; ``pmap`` is not used):

- :func:`fit_path_sharded` splits the ``lams`` of a path over a 1-D mesh (axis
  ``"path"``) with ``jax.shard_map``. The data are replicated; each device runs
  :func:`cvxnn_jax.fit_path`'s body (vmapped or warm-started) on its own chunk of ``lams``,
  so each device's ``while_loop`` stops at its own termination: no device waits for a
  slow lambda on another. No communication at all while solving.
- :func:`fit_data_parallel` splits the rows of ``X`` and ``y`` over a 1-D mesh (axis
  ``"rows"``) with a ``NamedSharding`` and runs ``fit``'s solve unchanged under ``jit``:
  XLA's SPMD partitioner keeps every ``(n, ...)`` array (``X``, the masks, ``X W``, the
  residuals) row-sharded and inserts the reductions. Each ``A^T r`` (``X^T (masks * r)``)
  is a local matmul followed by one all-reduce of its ``(d, P)`` result; ``A w`` needs
  none; loss values and inner products are all-reduces of scalars. ``X`` is never
  gathered (the tests check the compiled program has no all-gather and no all-reduce of
  an ``n``-sized array). That holds for the first-order solvers. The interior point
  (``model="relu"``'s default in float64) factors a Gram matrix each iteration: on the
  weights side (``n > P d``, or ``InteriorPoint(factor_side="weights")``) its ``(Pd, Pd)``
  matrix is a sum over rows, reduced like ``A^T r``; on the samples side the partitioner
  gathers the ``(n, n)`` matrix to factor it (seen in the compiled program with 4 host
  devices; the cost on real devices is not measured).

Both run unchanged on one device (a mesh of one).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from ._precision import full_precision
from ._fit import _prepare, _solve, check_lam
from ._path import check_lams, check_lanes, path_body, report_path, traced_setup
from ._solution import Solution

PATH_AXIS = "path"
ROWS_AXIS = "rows"


def make_mesh(devices, axis: str) -> jax.sharding.Mesh:
    """A 1-D mesh over ``devices`` (default: every device of the default backend)."""
    devices = jax.devices() if devices is None else list(devices)
    if len(devices) == 0:
        raise ValueError("devices is empty: pass at least one jax device")
    return jax.make_mesh((len(devices),), (axis,), axis_types=(AxisType.Auto,), devices=devices)


@eqx.filter_jit
def _sharded_path(setup, lams, mesh, warm_start: bool, lanes: int | None) -> Solution:
    arrays, static = eqx.partition(setup, eqx.is_array)

    def body(arrays, lams):
        return path_body(eqx.combine(arrays, static), lams, warm_start, lanes)

    spec = PartitionSpec(PATH_AXIS)
    # check_vma=False: the solvers' while_loops start from replicated values (zeros, the
    # data) and update them with this device's lambdas, which the varying-axes type check
    # rejects as a carry type change. The body has no collectives, so there is nothing
    # for the check to protect.
    return jax.shard_map(body, mesh=mesh, in_specs=(PartitionSpec(), spec), out_specs=spec,
                         check_vma=False)(arrays, lams)


@full_precision
def fit_path_sharded(X, y, lams, *, devices=None, warm_start: bool = False, gates=None,
                     model: str = "gated_relu", loss="squared", solver=None, tol=1e-6,
                     max_steps=None, bias: bool = False, key=None, throw: bool = False,
                     activation: str = "relu", leaky_slope: float = 0.01,
                     feasibility_tol=None, lanes: int | None = None) -> Solution:
    """:func:`cvxnn_jax.fit_path` with the ``lams`` split over devices (``jax.shard_map``).

    **Arguments:** as :func:`cvxnn_jax.fit_path`, plus
    - devices: the devices to use (default ``jax.devices()``); one device works too.

    ``lams`` is cut into ``len(devices)`` contiguous chunks (padded with copies of its
    last value to a multiple of ``len(devices)``); each device solves its chunk as
    ``fit_path`` would (vmapped, or warm-started within the chunk, ``lanes`` lambdas at a
    time), with its own loop.

    **Returns:** a :class:`Solution` with a leading axis ``len(lams)``, equal to
    ``fit_path``'s. Where ``len(lams)`` is a multiple of ``len(devices)`` every field stays
    sharded along that axis: ``NamedSharding(mesh, PartitionSpec("path"))``, device ``i``
    holding the solutions of chunk ``i``. Otherwise the padded lanes are dropped and the
    fields come back replicated on every device.
    """
    if not isinstance(warm_start, bool):
        raise TypeError(f"warm_start must be a bool, got {type(warm_start).__name__}")
    lanes = check_lanes(lanes)
    mesh = make_mesh(devices, PATH_AXIS)
    setup = _prepare(X, y, lams, check_lams, gates=gates, model=model, loss=loss, solver=solver,
                     tol=tol, max_steps=max_steps, bias=bias, key=key, activation=activation,
                     leaky_slope=leaky_slope, feasibility_tol=feasibility_tol)
    lams = setup.lam
    num_lams, num_devices = lams.shape[0], mesh.size
    padded = -(-num_lams // num_devices) * num_devices
    if padded != num_lams:
        lams = jnp.concatenate([lams, jnp.full((padded - num_lams,), lams[-1], lams.dtype)])
    solution = _sharded_path(traced_setup(setup._replace(lam=None)), lams, mesh, warm_start,
                             lanes)
    if padded != num_lams:
        solution = jax.tree.map(lambda a: a[:num_lams], solution)
    return report_path(solution, setup.lam, tol, throw, "fit_path_sharded")


@eqx.filter_jit
def _replicated_solve(setup, lam, mesh) -> Solution:
    replicated = NamedSharding(mesh, PartitionSpec())
    solution = _solve(setup, lam)
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, replicated), solution)


@full_precision
def fit_data_parallel(X, y, lam=1e-3, *, devices=None, gates=None, model: str = "gated_relu",
                      loss="squared", solver=None, tol=1e-6, max_steps=None, bias: bool = False,
                      key=None, throw: bool = False, activation: str = "relu",
                      leaky_slope: float = 0.01, feasibility_tol=None) -> Solution:
    """:func:`cvxnn_jax.fit` with the rows of ``X`` and ``y`` split over devices.

    **Arguments:** as :func:`cvxnn_jax.fit`, plus
    - devices: the devices to use (default ``jax.devices()``); ``n`` (the number of rows)
      must be a multiple of ``len(devices)``.

    The solver is ``fit``'s, unchanged: ``X`` and ``y`` are placed with
    ``NamedSharding(mesh, PartitionSpec("rows"))`` and XLA partitions the compiled solve,
    with one all-reduce of a ``(d, P)`` array per ``A^T r`` and all-reduces of scalars for
    loss values, and for the interior point the communication of its Gram matrix (see the
    module docstring). Same iterates as ``fit`` up to the order of floating-point sums.

    **Returns:** a :class:`Solution` replicated on every device of the mesh
    (``NamedSharding(mesh, PartitionSpec())``): its fields are ``(d, P)`` or scalars, so
    nothing ``n``-sized comes back. Warns or raises on non-convergence as ``fit`` does.
    """
    mesh = make_mesh(devices, ROWS_AXIS)
    setup = _prepare(X, y, lam, check_lam, gates=gates, model=model, loss=loss, solver=solver,
                     tol=tol, max_steps=max_steps, bias=bias, key=key, activation=activation,
                     leaky_slope=leaky_slope, feasibility_tol=feasibility_tol)
    n = setup.X.shape[0]
    if n % mesh.size:
        raise ValueError(f"X has {n} rows, which does not split evenly over {mesh.size} devices: "
                         "pass devices= with a number of devices that divides n")
    rows = NamedSharding(mesh, PartitionSpec(ROWS_AXIS))
    replicated = NamedSharding(mesh, PartitionSpec())
    setup = traced_setup(setup)
    setup = setup._replace(
        X=jax.device_put(setup.X, rows), y=jax.device_put(setup.y, rows),
        gates=jax.device_put(setup.gates, replicated), lam=jax.device_put(setup.lam, replicated),
        tol=jax.device_put(setup.tol, replicated),
        feasibility_tol=jax.device_put(setup.feasibility_tol, replicated),
        max_steps=jax.device_put(setup.max_steps, replicated),
    )
    solution = _replicated_solve(setup._replace(lam=None), setup.lam, mesh)
    return report_path(solution, setup.lam, tol, throw, "fit_data_parallel")
