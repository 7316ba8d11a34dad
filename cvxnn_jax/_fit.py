"""``fit``: the stable entry point (DESIGN.md section 5)."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._precision import full_precision
from ._growth import Grow, grow
from ._losses import LogisticLoss, Loss, get_loss
from ._networks import GatedReLUNetwork, relu_network, split_group
from ._patterns import add_bias_column, enumerate_gates_1d, enumerate_gates_2d, gate_masks, sample_gates
from ._programs.gated_relu import GatedReLUProgram
from ._programs.relu import ProjectedReLUProgram, ReLUProgram
from ._solution import Solution
from ._solvers._results import RESULTS
from ._solvers.admm import ADMM, admm_solve
from ._solvers.al import AugmentedLagrangian, al_solve
from ._solvers.fista import FISTA, fista_solve, solution_figures
from ._solvers.ipm import InteriorPoint, ipm_memory_entries, ipm_solve
from ._solvers.working_set import WorkingSet, working_set_solve
from ._validation import (
    check_data_matrix,
    check_gates,
    check_lam,
    check_positive_scalar,
    check_targets,
    is_concrete,
)

MODELS = ("gated_relu", "relu")
ACTIVATIONS = ("relu", "leaky_relu", "absolute")
DEFAULT_NUM_GATES = 100


class ConvergenceWarning(UserWarning):
    """A solve stopped before its certificate met the tolerance."""


def report_convergence(solution, tol, throw: bool, name: str):
    """Raise (``throw``, through ``equinox.error_if``) or warn if ``solution`` did not converge.

    The warning is issued only outside ``jit`` (it needs concrete values) and points at
    the caller of ``name`` (the public function that called this one). Returns the
    solution (with the error check attached when ``throw``).
    """
    if throw:
        return eqx.error_if(solution, solution.result != RESULTS.successful,
                            f"{name} did not converge")
    if is_concrete(solution.objective) and not bool(solution.converged):
        warnings.warn(
            f"{name} did not converge: {RESULTS[solution.result]} (relative gap "
            f"{float(solution.relative_gap):.3g}, tol {float(tol):.3g}, steps "
            f"{int(solution.num_steps)})",
            ConvergenceWarning,
            stacklevel=3,
        )
    return solution


def fista_program(setup: _Setup, lam):
    """The program FISTA solves for ``setup`` (gated ReLU, or ReLU with ``solver=FISTA``)
    at ``lam``, and ``program_at(lam)``: the same program at another ``lam`` (the masks
    and cone coefficients, which do not depend on ``lam``, are built once)."""
    program = _fista_program(setup.X, gate_masks(setup.X, setup.gates), setup.y, lam,
                             setup.loss, setup.model, setup.slope)
    if setup.model == "gated_relu":
        return program, lambda lam: eqx.tree_at(lambda p: p.lam, program, lam)
    return program, lambda lam: eqx.tree_at(lambda p: p.relu.lam, program, lam)


def _fista_program(X, masks, y, lam, loss: Loss, model: str, slope: float):
    if model == "gated_relu":
        return GatedReLUProgram.build(X, masks, y, lam, loss)
    return ProjectedReLUProgram.build(ReLUProgram(X=X, masks=masks, y=y, lam=lam, loss=loss,
                                                  slope=slope))


def fista_solution(program, state, gates, lam, feasibility_tol, bias: bool) -> Solution:
    """The :class:`Solution` of FISTA's final ``state`` on ``program`` (from
    :func:`fista_program`)."""
    if isinstance(program, GatedReLUProgram):
        W1, w2 = split_group(state.x)
        return Solution(
            weights=state.x,
            gates=gates,
            network=GatedReLUNetwork(gates=gates, W1=W1, w2=w2, bias=bias),
            **solution_figures(state),
            lam=lam,
        )
    relu, W = program.relu, state.x
    # Every iterate is projected onto the cones; only a projection that ran out of
    # iterations leaves a violation, and then the solve has not converged.
    violation = relu.violation(W)
    result = RESULTS.where((state.result == RESULTS.successful)
                           & (violation > feasibility_tol), RESULTS.infeasible, state.result)
    return Solution(
        weights=W,
        gates=gates,
        network=relu_network(W, relu.slope, bias),
        objective=relu.network_objective(W),
        gap=state.gap,
        dual_objective=state.best_dual,
        num_steps=state.num_steps,
        result=result,
        lam=lam,
        violation=violation,
    )


@eqx.filter_jit
def _solve_gated_relu(X, y, gates, lam, tol, max_steps, loss: Loss, solver, bias: bool,
                      x0=None):
    program = _fista_program(X, gate_masks(X, gates), y, lam, loss, "gated_relu", 1.0)
    x0 = program.init_x() if x0 is None else x0
    if isinstance(solver, WorkingSet):
        state = working_set_solve(program, x0, tol, max_steps, solver)
    else:
        state = fista_solve(program, x0, tol, max_steps, solver)
    return fista_solution(program, state, gates, lam, None, bias)


@eqx.filter_jit
def _solve_relu(X, y, gates, lam, tol, feasibility_tol, max_steps, loss: Loss, solver,
                bias: bool, slope: float, x0=None):
    masks = gate_masks(X, gates)
    if isinstance(solver, FISTA):
        projected = _fista_program(X, masks, y, lam, loss, "relu", slope)
        x0 = projected.init_x() if x0 is None else x0
        state = fista_solve(projected, x0, tol, max_steps, solver)
        return fista_solution(projected, state, gates, lam, feasibility_tol, bias)
    program = ReLUProgram(X=X, masks=masks, y=y, lam=lam, loss=loss, slope=slope)
    x0 = program.init_x() if x0 is None else x0
    if isinstance(solver, (ADMM, InteriorPoint)):
        if isinstance(solver, ADMM):
            state = admm_solve(program, x0, tol, feasibility_tol, max_steps, solver)
            W = state.W_report
        else:
            # Starts inside the cones, along the gates; a warm start x0 is not used.
            state = ipm_solve(program, gates, tol, feasibility_tol, max_steps, solver)
            W = state.W
        figures = (state.num_steps, state.objective, state.gap, state.best_dual,
                   state.violation, state.result)
    else:
        state = al_solve(program, x0, tol, feasibility_tol, max_steps, solver)
        W = state.W
        figures = (state.inner.num_steps, state.objective,
                   state.gap, state.best_dual, state.violation, state.result)
    num_steps, objective, gap, dual_objective, violation, result = figures
    return Solution(
        weights=W,
        gates=gates,
        network=relu_network(W, slope, bias),
        objective=objective,
        gap=gap,
        dual_objective=dual_objective,
        num_steps=num_steps,
        result=result,
        lam=lam,
        violation=violation,
    )


def _resolve_gates(gates, X, key):
    # fit takes growth before it gets here; every other entry point sees it here.
    if isinstance(gates, Grow) or (isinstance(gates, str) and gates == "grow"):
        raise ValueError("gates='grow' (pattern growth) is only supported by cvxnn_jax.fit: "
                         "grow with fit, then pass its solution's gates (sol.gates)")
    if isinstance(gates, str):
        if gates != "exact":
            raise ValueError(f"gates must be an int, an array, 'exact', 'grow' or a cvxnn_jax.Grow, "
                             f"got {gates!r}")
        return _exact_gates(X)
    return resolve_sampled_gates(gates, X, key, "fit")


def resolve_sampled_gates(gates, X, key, caller: str):
    """Gates from ``None`` / an int (sampled from ``key``) or a user ``(d, P)`` array.

    ``caller`` names the public function in the error raised when sampling is asked for
    inside ``jit`` (the number of distinct patterns depends on the data).
    """
    if gates is None or (isinstance(gates, (int, np.integer)) and not isinstance(gates, bool)):
        num_gates = DEFAULT_NUM_GATES if gates is None else int(gates)
        if num_gates < 1:
            raise ValueError(f"gates (the number of gates to sample) must be >= 1, got {num_gates}")
        if not is_concrete(X):
            raise TypeError(
                f"gates must be an array of shape (d, P) when {caller} is traced (inside "
                "jit/vmap): sampling drops duplicate patterns, so its output shape depends on "
                "the data. Call cvxnn_jax.sample_gates outside jit and pass the result."
            )
        return sample_gates(jax.random.PRNGKey(0) if key is None else key, X, num_gates)
    return check_gates(gates, X.shape[1], X.dtype)


def _exact_gates(X):
    """Every activation pattern of 1-D or 2-D data with the bias column appended."""
    if not is_concrete(X):
        raise TypeError("gates='exact' enumerates patterns outside jit; call fit outside jit "
                        "or pass cvxnn_jax.enumerate_gates_2d(X) / enumerate_gates_1d(x)")
    d = X.shape[1] - 1
    if d == 1:
        return enumerate_gates_1d(X[:, 0])
    if d == 2:
        return enumerate_gates_2d(X[:, :2])
    raise ValueError(f"gates='exact' needs bias=True and data with 1 or 2 features, got {d + 1} "
                     "columns (exact enumeration is exponential in the dimension)")


class _Setup(NamedTuple):
    """Validated and resolved arguments of ``fit`` (shared with ``fit_path`` and the
    device and implicit-differentiation entry points)."""

    X: jax.Array  # (n, d'), bias column appended when ``bias``
    y: jax.Array
    lam: jax.Array  # as returned by the caller's ``lam_check``
    gates: jax.Array
    model: str
    loss: Loss
    solver: eqx.Module
    slope: float
    bias: bool
    tol: float
    feasibility_tol: float
    max_steps: int


# Entries (of the dtype) that the default interior point may hold for its Newton systems
# on the CPU: 2^28 is 2 GiB in float64. Above it, ``solver=None`` picks the augmented
# Lagrangian. On an accelerator that reports its memory the budget is a quarter of it.
IPM_MAX_ENTRIES = 2**28
IPM_DEVICE_MEMORY_FRACTION = 0.25


def device_memory_bytes() -> int | None:
    """Memory of JAX's default device where it reports one (GPUs, TPUs); ``None`` on the
    CPU, whose memory is shared with everything else on the machine."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats()
    except Exception:  # a backend without memory statistics
        return None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


def ipm_max_entries(dtype) -> int:
    """Entries of ``dtype`` the default interior point may hold (:func:`default_relu_solver`):
    ``IPM_MAX_ENTRIES`` on the CPU, or ``IPM_DEVICE_MEMORY_FRACTION`` of an accelerator's
    memory when that is more. Measured on an H100 (n = 10 000 to 200 000, d = 20, 200
    patterns, float64), a solve's peak device memory was 1.39-1.49 times
    :func:`ipm_memory_entries`, so the default's peak stays under 40% of the device."""
    memory = device_memory_bytes()
    if memory is None:
        return IPM_MAX_ENTRIES
    return max(IPM_MAX_ENTRIES, int(IPM_DEVICE_MEMORY_FRACTION * memory) // jnp.dtype(dtype).itemsize)


ADMM_MAX_SAMPLES = 500  # solver=None: ADMM up to this n where the interior point is not used


def default_relu_solver(n: int, d: int, num_patterns: int, dtype) -> eqx.Module:
    """The solver ``solver=None`` (or ``"auto"``) gives ``model="relu"`` on ``(n, d)`` data
    (``d`` counting the bias column) with ``num_patterns`` patterns.

    The interior point (:class:`InteriorPoint`) in float64 when its Newton systems fit
    in :func:`ipm_max_entries` entries (2 GiB on the CPU, a quarter of the memory of a
    GPU): it reaches a certified relative gap of 1e-6 in tens of iterations where the
    first-order solvers take tens of thousands of steps (``benchmarks/README.md``, "The
    ReLU program's solvers against CVXPY"). In float32 the interior point stalls about
    10% above the optimum (the condition of its late Newton systems exceeds 1 / eps).
    Otherwise ADMM (:class:`ADMM`) for ``n <= ADMM_MAX_SAMPLES`` (500) and the augmented
    Lagrangian (:class:`AugmentedLagrangian`, whose memory is that of a few ``(n, 2P)``
    and ``(d, 2P)`` arrays) above. Measured on 2 CPU cores (``python
    benchmarks/al_vs_admm.py``; d = 20, P = 200 or d = 5, P = 20): ADMM certified first at
    n = 100, 200 and 500 in float64 and float32, at tolerances 1e-3 and 1e-6 (n = 500,
    float32, 1e-3: 14 s against 31 s); from n = 1000 on AL did (n = 1000, float64: 99 s
    against 145 s, and 73.9 s against 85.6 s after both iterations got cheaper on
    2026-11-28; n = 2000: 233 s, ADMM not in 60 000 iterations), its multipliers'
    certificate helped by a Lagrangian-relaxation bound.
    """
    if (jnp.dtype(dtype) == jnp.float64
            and ipm_memory_entries(n, d, num_patterns) <= ipm_max_entries(dtype)):
        return InteriorPoint()
    if n <= ADMM_MAX_SAMPLES:
        return ADMM()
    return AugmentedLagrangian()


def _prepare(X, y, lam, lam_check, *, gates, model, loss, solver, tol, max_steps, bias, key,
             activation, leaky_slope, feasibility_tol) -> _Setup:
    """``fit``'s argument checks and defaults, in ``fit``'s order; ``lam_check(lam, dtype)``
    validates ``lam`` (a scalar for ``fit``, a vector for ``fit_path``)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    loss_fn = get_loss(loss)
    if model == "gated_relu":
        if solver is None or solver == "fista":
            solver = FISTA()
        elif not isinstance(solver, (FISTA, WorkingSet)):
            raise ValueError("solver must be None, 'fista', a FISTA or a WorkingSet instance "
                             f"for 'gated_relu', got {solver!r}")
    else:
        if solver is None or solver == "auto":
            solver = "auto"  # resolved once the shapes are known (default_relu_solver)
        elif solver == "al":
            solver = AugmentedLagrangian()
        elif solver == "admm":
            solver = ADMM()
        elif solver == "fista":
            solver = FISTA()
        elif solver == "ipm":
            solver = InteriorPoint()
        elif not isinstance(solver, (AugmentedLagrangian, ADMM, FISTA, InteriorPoint)):
            raise ValueError("solver must be None, 'auto', 'al', 'admm', 'fista', 'ipm' or an "
                             "AugmentedLagrangian/ADMM/FISTA/InteriorPoint instance for "
                             f"'relu', got {solver!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if activation != "relu" and model != "relu":
        raise ValueError(f"activation={activation!r} needs model='relu'")
    if activation == "leaky_relu" and not 0.0 < float(leaky_slope) < 1.0:
        raise ValueError(f"leaky_slope must lie in (0, 1), got {leaky_slope}")
    slope = {"relu": 0.0, "leaky_relu": float(leaky_slope), "absolute": -1.0}[activation]
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
    if isinstance(gates, str) and gates == "exact" and not bias:
        raise ValueError("gates='exact' needs bias=True: the patterns enumerated are those of "
                         "affine hyperplanes")

    X = check_data_matrix(X)
    y = check_targets(y, X.shape[0], X.dtype, binary_labels=isinstance(loss_fn, LogisticLoss))
    lam = lam_check(lam, X.dtype)
    check_positive_scalar(tol, "tol", allow_zero=True)
    if max_steps is not None:
        check_positive_scalar(max_steps, "max_steps", integer=True)
    feasibility_tol = tol if feasibility_tol is None else feasibility_tol
    check_positive_scalar(feasibility_tol, "feasibility_tol", allow_zero=True)
    if bias:
        X = add_bias_column(X)
    gates = _resolve_gates(gates, X, key)
    if solver == "auto":
        solver = default_relu_solver(X.shape[0], X.shape[1], gates.shape[1], X.dtype)
    if max_steps is None:
        max_steps = 10_000 if model == "gated_relu" else {
            InteriorPoint: 100}.get(type(solver), 100_000)

    return _Setup(X, y, lam, gates, model, loss_fn, solver, slope, bias, tol, feasibility_tol,
                  max_steps)


def _solve(setup: _Setup, lam, x0=None) -> Solution:
    """One jit-compiled solve of ``setup``'s program at ``lam`` (a scalar), from ``x0``
    (default zero). Pure: callable under ``jit``, ``vmap``, ``scan`` and ``shard_map``."""
    X = setup.X
    tol = jnp.asarray(setup.tol, X.dtype)
    max_steps = jnp.asarray(setup.max_steps, jnp.int32)
    if setup.model == "gated_relu":
        return _solve_gated_relu(X, setup.y, setup.gates, lam, tol, max_steps, setup.loss,
                                 setup.solver, setup.bias, x0)
    return _solve_relu(X, setup.y, setup.gates, lam, tol,
                       jnp.asarray(setup.feasibility_tol, X.dtype), max_steps, setup.loss,
                       setup.solver, setup.bias, setup.slope, x0)


@full_precision
def fit(
    X,
    y,
    lam=1e-3,
    *,
    gates=None,
    model: str = "gated_relu",
    loss: str | Loss = "squared",
    solver=None,
    tol=1e-6,
    max_steps=None,
    bias: bool = False,
    key=None,
    throw: bool = False,
    activation: str = "relu",
    leaky_slope: float = 0.01,
    feasibility_tol=None,
) -> Solution:
    """Train a two-layer network through its convex program, with a certificate.

    **Arguments:**
    - X: ``(n, d)`` data.
    - y: ``(n,)`` targets (labels in {-1, +1} for ``loss="logistic"``).
    - lam: scalar regularisation strength (>= 0); weight decay of the network.
    - gates: ``(d', P)`` gate vectors (``d' = d + 1`` with ``bias=True``); an int: the
      number of Gaussian gates to sample from ``key`` (default 100); or ``"exact"``:
      every activation pattern, for 1-D or 2-D data with ``bias=True`` (then the
      certificate is global for the non-convex network); or ``"grow"`` / a
      :class:`Grow`: start from a few sampled gates and add the patterns the dual
      violation oracle names until it finds none (column generation, outside ``jit``;
      ``solution.growth`` reports the rounds and the oracle's certificate).
    - model: ``"gated_relu"`` (unconstrained group lasso) or ``"relu"`` (the
      cone-constrained program, exactly equivalent to the ReLU network).
    - loss: ``"squared"`` or ``"logistic"``.
    - solver: gated ReLU: ``None``/``"fista"`` or a ``FISTA``, or a :class:`WorkingSet`
      (FISTA on a working set of ``capacity`` gates, certified on all of them: faster
      where the optimum uses few of many gates); ReLU: ``None``/``"auto"``
      (the interior point in float64 when its Newton systems fit in 2 GiB, otherwise
      ADMM up to n = 500 and the augmented Lagrangian above: :func:`default_relu_solver`),
      ``"al"`` (augmented
      Lagrangian), ``"admm"``, ``"fista"`` (FISTA whose prox is the exact
      projection onto the cones, :class:`ProjectedReLUProgram`: feasible iterates, tight
      certificates, costlier steps), ``"ipm"`` (a primal-dual interior-point method,
      :class:`InteriorPoint`: tens of Newton iterations, each a Cholesky factorisation
      of size ``min(n, P d)``; float64; it starts inside the cones along the gates and
      ignores warm starts), or an
      ``AugmentedLagrangian``/``ADMM``/``FISTA``/``InteriorPoint``.
    - tol: relative duality gap at which to stop (``gap <= tol * objective``).
    - max_steps: iteration budget (default 10 000 for gated FISTA, summed over the
      restricted solves of a ``WorkingSet``; 100 000 steps for AL
      and ReLU FISTA, 100 000 iterations for ADMM, 100 for the interior-point method).
    - bias: append a column of ones to ``X`` (the network then adds it to each input).
    - key: ``jax.random`` key for sampling gates (default ``PRNGKey(0)``).
    - throw: raise (through ``equinox.error_if``) if the solve does not converge.
      Otherwise a non-converged solve warns (``ConvergenceWarning``) when called
      outside ``jit``, and always reports ``solution.result``.
    - activation: ``model="relu"`` only: ``"relu"``, ``"leaky_relu"`` (negative slope
      ``leaky_slope``) or ``"absolute"``.
    - feasibility_tol: ``model="relu"`` only: largest cone violation accepted (in units
      of weight norm, see ``ReLUProgram.violation``); default ``tol``.

    **Returns:** a :class:`Solution` (objective, gap, converged, num_steps, weights,
    network, ...). For ``model="relu"`` the weights are ``[V | U]`` (``(d', 2P)``), the
    objective is the recovered network's non-convex objective, and ``violation`` is set.

    ``lam``, ``tol`` and ``max_steps`` are traced, so new values do not recompile.
    ``fit`` can be called inside the caller's ``jax.jit`` when ``gates`` is an array.
    Its solvers are ``while_loop``s, which JAX cannot differentiate in reverse mode
    (``jax.grad`` of ``fit`` fails inside JAX); for gradients with respect to ``X``,
    ``y`` or ``lam`` use :func:`differentiable_fit` (implicit differentiation).
    """
    spec = _growth_spec(gates)
    if spec is not None:
        gates = spec.initial_gates
    setup = _prepare(X, y, lam, check_lam, gates=gates, model=model, loss=loss, solver=solver,
                     tol=tol, max_steps=max_steps, bias=bias, key=key, activation=activation,
                     leaky_slope=leaky_slope, feasibility_tol=feasibility_tol)
    if spec is not None:
        if not is_concrete(setup.X) or not is_concrete(setup.lam):
            raise TypeError("gates='grow' runs its rounds outside jit (the pattern set depends "
                            "on the data); call fit outside jit")
        solution = grow(setup, jax.random.PRNGKey(0) if key is None else key, spec,
                        lambda s, x0: _solve(s, s.lam, x0))
    else:
        solution = _solve(setup, setup.lam)
    return report_convergence(solution, tol, throw, "fit")


def _growth_spec(gates) -> Grow | None:
    if isinstance(gates, Grow):
        return gates
    if isinstance(gates, str) and gates == "grow":
        return Grow()
    return None
