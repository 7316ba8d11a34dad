"""``fit_path``: a regularisation path in one compile (DESIGN.md section 5).

Two ways to sweep ``lams`` on one device, both inside one ``jit``:

- vmapped (default): every ``lam`` is a lane of one ``jax.vmap``-ed solve. The
  operators' matvecs over ``(d, P)`` weights become matmuls over ``(L, d, P)``; the
  batched loop runs until the slowest lane terminates, and a lane that has terminated
  keeps its state (its result equals its own solve's).
- warm-started (``warm_start=True``): the ``lams`` sorted largest first, each solve
  started from the previous solution (the classic path of ``glmnet`` and
  scikit-learn's ``lasso_path``). One lane, so it never waits for a slow neighbour;
  each solve starts near its answer. The results come back in the caller's order.

``lanes=K`` solves ``K`` lambdas at a time. FISTA solves (gated ReLU, and ReLU with
``solver="fista"``) run as a queue (:func:`fista_queue`): ``K`` lanes of one vmapped
block of steps, each lane taking the next ``lam`` (largest first) as soon as its solve
stops, so no lane waits for a slower one; with ``warm_start`` a new solve starts from the
current weights of the smallest ``lam`` taken so far (solved, or still being solved in
another lane). The default vmapped path is this queue for FISTA, with every ``lam`` a
lane; the queue also runs the Newton polish one lane at a time, where a batched polish
that one lane needs runs for every lane (``python benchmarks/path.py
--size 2000,20,200 --num-lams 16 --float64 --tol 1e-6 --lanes 4``, 2 cores: the vmapped
path took 6.66 s batched and 2.30 s queued, against 1.71 s for a loop of ``fit``). The
other solvers (AL, ADMM, the interior point; a gated-ReLU ``WorkingSet``) solve the
sorted ``lams`` in blocks of ``K``, one vmapped solve per block, one block after the
other (one lane: a ``lax.scan`` of single solves, for every solver).

The solve is the one ``fit`` runs; ``lams`` is a traced argument, so a second path of
the same shapes does not recompile. :func:`cvxnn_jax.fit_path_sharded` splits the path
over devices.
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._precision import full_precision
from ._fit import ConvergenceWarning, _prepare, _Setup, _solve, fista_program, fista_solution
from ._solution import Solution
from ._solvers._results import RESULTS
from ._solvers.fista import FISTA, fista_queue
from ._validation import _as_float_array, _check_finite, is_concrete


def check_lams(lams, dtype, name: str = "lams"):
    """``lams`` as a non-empty ``(L,)`` array of ``dtype``, finite and >= 0."""
    lams = _as_float_array(lams, name)
    if lams.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of regularisation strengths, got shape "
                         f"{lams.shape}")
    if lams.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one regularisation strength")
    _check_finite(lams, name)
    if is_concrete(lams) and bool(np.any(np.asarray(lams) < 0)):
        raise ValueError(f"{name} must be >= 0, got {np.asarray(lams).min()}")
    return lams.astype(dtype)


def _zero_weights(setup: _Setup):
    P = setup.gates.shape[1]
    return jnp.zeros((setup.X.shape[1], P if setup.model == "gated_relu" else 2 * P),
                     setup.X.dtype)


def check_lanes(lanes) -> int | None:
    """``lanes`` as ``None`` or a Python ``int >= 1`` (it sets array shapes: static)."""
    if lanes is None:
        return None
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)):
        raise TypeError(f"lanes must be None or an int >= 1, got {type(lanes).__name__}")
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    return int(lanes)


def path_body(setup: _Setup, lams, warm_start: bool, lanes: int | None = None) -> Solution:
    """The path over ``lams`` (``(L,)``) as a pure function (see :func:`fit_path`).

    ``lanes`` lambdas are solved at once (default: all of them, or one with
    ``warm_start``). With more than one lane FISTA solves run as a queue of lanes
    (:func:`fista_queue`), the ``lams`` sorted largest first. The other solvers vmap one
    solve over all ``lams`` or cut the sorted ``lams`` into blocks of ``lanes`` (the
    last padded with copies of the smallest), solved one block after the other in a
    ``lax.scan`` (so is one lane of any solver); with ``warm_start`` every lane of a
    block starts from the solution at the previous block's smallest ``lam``. Callable
    under ``jit`` and inside ``shard_map`` (each device runs it on its chunk).
    """
    num_lams = lams.shape[0]
    lanes = min(lanes or (1 if warm_start else num_lams), num_lams)
    if isinstance(setup.solver, FISTA) and lanes > 1:
        # (One lane is the scan below: the same solves, measured 4-9% faster than a
        # queue of one lane, at n=2000, d=20, P=200 in float64.)
        return _fista_queue_path(setup, lams, warm_start, lanes)
    if lanes == num_lams and not warm_start:
        return jax.vmap(lambda lam: _solve(setup, lam))(lams)
    # Sorted, so that the lambdas of a block need similar numbers of steps (a vmapped
    # loop runs every lane as long as its slowest) and a warm start comes from the
    # nearest lambda already solved.
    order = jnp.argsort(-lams, stable=True)
    num_blocks = -(-num_lams // lanes)
    padded = jnp.concatenate([lams[order], jnp.repeat(lams[order[-1:]],
                                                      num_blocks * lanes - num_lams)])

    def solve_block(weights, block):
        x0 = weights if warm_start else None
        if lanes == 1:
            solution = jax.tree.map(lambda a: a[None], _solve(setup, block[0], x0))
        else:
            solution = jax.vmap(lambda lam: _solve(setup, lam, x0))(block)
        return solution.weights[-1], solution

    _, solutions = jax.lax.scan(solve_block, _zero_weights(setup),
                                padded.reshape(num_blocks, lanes))
    inverse = jnp.argsort(order)
    return jax.tree.map(lambda a: a.reshape((num_blocks * lanes,) + a.shape[2:])[inverse],
                        solutions)


def _fista_queue_path(setup: _Setup, lams, warm_start: bool, lanes: int) -> Solution:
    """The path by :func:`fista_queue`: ``lanes`` lanes, each taking the next ``lam``
    (largest first) as soon as its solve stops."""
    order = jnp.argsort(-lams, stable=True)
    program, program_at = fista_program(setup, lams[order[0]])
    states = fista_queue(program_at, lams[order], program.init_x(), setup.tol, setup.max_steps,
                         lanes, warm_start, setup.solver)
    states = jax.tree.map(lambda a: a[jnp.argsort(order)], states)
    return jax.vmap(lambda lam, state: fista_solution(program_at(lam), state, setup.gates, lam,
                                                      setup.feasibility_tol, setup.bias))(
        lams, states)


@eqx.filter_jit
def _solve_path(setup: _Setup, lams, warm_start: bool, lanes: int | None) -> Solution:
    return path_body(setup, lams, warm_start, lanes)


def traced_setup(setup: _Setup) -> _Setup:
    """``tol``, ``feasibility_tol`` and ``max_steps`` as arrays, so ``filter_jit`` traces
    them (new values do not recompile) instead of hashing them as static."""
    dtype = setup.X.dtype
    return setup._replace(tol=jnp.asarray(setup.tol, dtype),
                          feasibility_tol=jnp.asarray(setup.feasibility_tol, dtype),
                          max_steps=jnp.asarray(setup.max_steps, jnp.int32))


def report_path(solution: Solution, lams, tol, throw: bool, name: str) -> Solution:
    """Raise (``throw``) or warn, outside ``jit``, naming the lambdas that did not converge."""
    failed = solution.result != RESULTS.successful
    if throw:
        return eqx.error_if(solution, jnp.any(failed), f"{name} did not converge at every lam")
    if is_concrete(solution.objective):
        failed = np.asarray(failed)
        if failed.any():
            values = np.asarray(lams)[failed]
            shown = ", ".join(f"{v:.3g}" for v in values[:8]) + (", ..." if values.size > 8 else "")
            warnings.warn(
                f"{name} did not converge at {int(failed.sum())} of {failed.size} lambdas "
                f"({shown}; tol {float(tol):.3g}): see solution.converged and solution.result",
                ConvergenceWarning,
                stacklevel=3,
            )
    return solution


@full_precision
def fit_path(
    X,
    y,
    lams,
    *,
    gates=None,
    model: str = "gated_relu",
    loss="squared",
    solver=None,
    tol=1e-6,
    max_steps=None,
    bias: bool = False,
    key=None,
    throw: bool = False,
    activation: str = "relu",
    leaky_slope: float = 0.01,
    feasibility_tol=None,
    warm_start: bool = False,
    lanes: int | None = None,
) -> Solution:
    """Solve the convex program at every ``lam`` in ``lams``, in one compiled call.

    **Arguments:** as :func:`cvxnn_jax.fit`, except
    - lams: ``(L,)`` regularisation strengths (>= 0), in any order.
    - warm_start: ``False`` (default): one ``vmap``-ed solve over all ``lams``: the
      matmuls of all lambdas are batched, which pays where a single solve leaves the
      device idle (a GPU). ``True``: solve from the largest ``lam`` to the smallest,
      each solve started from the previous solution (one lane at a time; the path of
      scikit-learn's ``lasso_path``). Prefer ``True`` on a CPU: there one solve already
      keeps the cores busy with its ``(n, d) x (d, P)`` matmuls, and the batched loop
      runs every lane for as many steps as the slowest ``lam`` needs
      (``benchmarks/path.py``). For ``model="relu"`` only the weights are carried over:
      the solver's multipliers restart from zero.
    - lanes: how many lambdas are solved at once (a Python int >= 1; default: all of
      them, or one with ``warm_start=True``). A vmapped solve runs every lane for as
      many steps as its slowest lambda needs, and the small lambdas need the most. With
      fewer lanes than lambdas the ``lams`` are sorted largest first, and for FISTA
      solves (gated ReLU; ReLU with ``solver="fista"``) the lanes form a queue: each
      lane's solve runs in one vmapped block of steps with the others, and a lane whose
      solve stops takes the next ``lam`` at once (with ``warm_start=True`` starting from
      the current weights at the smallest ``lam`` taken so far, solved or still being
      solved in another lane), so no lane waits for a slower one while the lanes'
      matmuls are still batched. Each cold lane follows ``fit``'s steps exactly. The
      other solvers (AL, ADMM, the interior point; a gated-ReLU ``WorkingSet``) solve
      the sorted ``lams`` in blocks of ``lanes``, one vmapped solve per block (with
      ``warm_start=True`` each block starts from the solution at the previous block's
      smallest ``lam``).

    **Returns:** a :class:`Solution` whose every field has a leading axis of length
    ``L``, in the order of ``lams``: ``solution.objective[k]`` is the objective at
    ``lams[k]``, ``solution.converged`` says which lambdas converged, and
    ``jax.tree.map(lambda a: a[k], solution)`` is the solution at ``lams[k]``.
    A lambda that did not converge warns (``ConvergenceWarning``, outside ``jit``) or,
    with ``throw=True``, raises.

    ``lams``, ``tol`` and ``max_steps`` are traced: a second path with the same shapes
    does not recompile. Callable inside the caller's ``jax.jit`` when ``gates`` is an
    array.
    """
    if not isinstance(warm_start, bool):
        raise TypeError(f"warm_start must be a bool, got {type(warm_start).__name__}")
    lanes = check_lanes(lanes)
    setup = _prepare(X, y, lams, check_lams, gates=gates, model=model, loss=loss, solver=solver,
                     tol=tol, max_steps=max_steps, bias=bias, key=key, activation=activation,
                     leaky_slope=leaky_slope, feasibility_tol=feasibility_tol)
    solution = _solve_path(traced_setup(setup._replace(lam=None)), setup.lam, warm_start,
                           lanes)
    return report_path(solution, setup.lam, tol, throw, "fit_path")
