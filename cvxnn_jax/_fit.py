"""``fit``: the stable entry point (DESIGN.md section 5)."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._losses import LogisticLoss, Loss, get_loss
from ._networks import GatedReLUNetwork, split_group
from ._patterns import add_bias_column, gate_masks, sample_gates
from ._programs.gated_relu import GatedReLUProgram
from ._solution import Solution
from ._solvers._results import RESULTS
from ._solvers.fista import FISTA, fista_solve
from ._validation import (
    check_data_matrix,
    check_gates,
    check_lam,
    check_positive_scalar,
    check_targets,
    is_concrete,
)

MODELS = ("gated_relu", "relu")
DEFAULT_NUM_GATES = 100


class ConvergenceWarning(UserWarning):
    """A solve stopped before its certificate met the tolerance."""


@eqx.filter_jit
def _solve_gated_relu(X, y, gates, lam, tol, max_steps, loss: Loss, solver: FISTA, bias: bool):
    program = GatedReLUProgram(X=X, masks=gate_masks(X, gates), y=y, lam=lam, loss=loss)
    state = fista_solve(program, program.init_x(), tol, max_steps, solver)
    W1, w2 = split_group(state.x)
    return Solution(
        weights=state.x,
        gates=gates,
        network=GatedReLUNetwork(gates=gates, W1=W1, w2=w2, bias=bias),
        objective=state.objective,
        gap=state.gap,
        dual_objective=state.best_dual,
        num_steps=state.num_steps,
        result=state.result,
        lam=lam,
    )


def _resolve_gates(gates, X, key):
    if gates is None or (isinstance(gates, (int, np.integer)) and not isinstance(gates, bool)):
        num_gates = DEFAULT_NUM_GATES if gates is None else int(gates)
        if num_gates < 1:
            raise ValueError(f"gates (the number of gates to sample) must be >= 1, got {num_gates}")
        if not is_concrete(X):
            raise TypeError(
                "gates must be an array of shape (d, P) when fit is traced (inside jit/vmap): "
                "sampling drops duplicate patterns, so its output shape depends on the data. "
                "Call cvxnn_jax.sample_gates outside jit and pass the result."
            )
        return sample_gates(jax.random.PRNGKey(0) if key is None else key, X, num_gates)
    return check_gates(gates, X.shape[1], X.dtype)


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
    max_steps=10_000,
    bias: bool = False,
    key=None,
    throw: bool = False,
) -> Solution:
    """Train a two-layer network through its convex program, with a certificate.

    **Arguments:**
    - X: ``(n, d)`` data.
    - y: ``(n,)`` targets (labels in {-1, +1} for ``loss="logistic"``).
    - lam: scalar regularisation strength (>= 0); weight decay of the network.
    - gates: ``(d', P)`` gate vectors (``d' = d + 1`` with ``bias=True``), or an int:
      the number of Gaussian gates to sample from ``key`` (default 100).
    - model: ``"gated_relu"`` (``"relu"`` arrives with the cone-constrained solvers).
    - loss: ``"squared"`` or ``"logistic"``.
    - solver: ``None`` or ``"fista"`` (the default for gated ReLU), or a ``FISTA``
      instance to change its hyper-parameters.
    - tol: relative duality gap at which to stop (``gap <= tol * objective``).
    - max_steps: iteration budget.
    - bias: append a column of ones to ``X`` (the network then adds it to each input).
    - key: ``jax.random`` key for sampling gates (default ``PRNGKey(0)``).
    - throw: raise (through ``equinox.error_if``) if the solve does not converge.
      Otherwise a non-converged solve warns (``ConvergenceWarning``) when called
      outside ``jit``, and always reports ``solution.result``.

    **Returns:** a :class:`Solution` (objective, gap, converged, num_steps, weights,
    network, ...).

    ``lam``, ``tol`` and ``max_steps`` are traced, so new values do not recompile.
    ``fit`` can be called inside the caller's ``jax.jit`` when ``gates`` is an array.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if model == "relu":
        raise NotImplementedError(
            "model='relu' (cone-constrained program, AL/ADMM solvers) is not implemented yet; "
            "use model='gated_relu'"
        )
    loss_fn = get_loss(loss)
    if solver is None or solver == "fista":
        solver = FISTA()
    elif not isinstance(solver, FISTA):
        raise ValueError(f"solver must be None, 'fista' or a FISTA instance for {model!r}, got {solver!r}")
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {type(bias).__name__}")

    X = check_data_matrix(X)
    y = check_targets(y, X.shape[0], X.dtype, binary_labels=isinstance(loss_fn, LogisticLoss))
    lam = check_lam(lam, X.dtype)
    check_positive_scalar(tol, "tol", allow_zero=True)
    check_positive_scalar(max_steps, "max_steps")
    if bias:
        X = add_bias_column(X)
    gates = _resolve_gates(gates, X, key)

    solution = _solve_gated_relu(
        X, y, gates, lam, jnp.asarray(tol, X.dtype), jnp.asarray(max_steps, jnp.int32),
        loss_fn, solver, bias,
    )
    if throw:
        solution = eqx.error_if(
            solution, solution.result != RESULTS.successful, "fit did not converge"
        )
    elif is_concrete(solution.objective) and not bool(solution.converged):
        message = RESULTS[solution.result]
        warnings.warn(
            f"fit did not converge: {message} (relative gap {float(solution.relative_gap):.3g}, "
            f"tol {float(tol):.3g}, steps {int(solution.num_steps)})",
            ConvergenceWarning,
            stacklevel=2,
        )
    return solution
