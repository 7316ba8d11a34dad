"""Differentiating a solve: implicit differentiation of the optimality conditions.

``lax.while_loop`` is not reverse-differentiable, so :func:`differentiable_fit` runs the
solve of :func:`cvxnn_jax.fit` forward and supplies its reverse-mode derivative by the
implicit function theorem (``jax.custom_vjp``; STYLE.md, "Differentiation"). The
parameters are ``theta = (X, y, lam)``; the gates, and so the masks ``1[X g >= 0]``, are
held fixed (the masks are piecewise constant in ``X``: their derivative is zero wherever
it exists).

**Gated ReLU.** A solution ``W`` is a fixed point of the proximal-gradient map,
``W = prox_{eta lam}(W - eta grad f(W))``. Let ``S`` be the support (the groups
``w_i != 0``). Where the support is stable under a small change of ``theta`` (strict
complementarity: ``||(A^T rho)_i|| < lam`` off the support), the fixed point is
equivalent to ``W_{S^c} = 0`` and ``grad_S phi(W; theta) = 0`` with the objective
``phi = L(A W, y) + lam sum_i ||w_i||``, smooth on the support. Differentiating,
``dW_S = -K^{-1} d_theta grad_S phi`` with ``K = hess_SS phi`` (symmetric). The VJP of a
cotangent ``v`` solves ``K u = v_S`` and returns ``-d_theta <grad_W phi(W; theta), u>``.

**ReLU.** The cone constraints ``S2 * (X W) >= 0`` active at the solution are held
active (treated as equalities ``E(X) W = 0``, rows of ``E`` are ``s_k x_k`` of each
active constraint). With multipliers ``mu`` (``grad_W phi = E^T mu``), the KKT system
``grad_W phi - E^T mu = 0``, ``E W = 0`` is differentiated: the adjoint solves
``[[K, E^T], [E, 0]] [a; b] = [v; 0]`` (by ``a = N (N K N)^+ N v`` with ``N`` the
projector onto the null space of each column's active constraints, then ``b`` by least
squares), and the cotangent is
``-d_theta (<a, grad_W phi> - <mu, E a> + <b, E W>)``. Multipliers are recomputed from
the solution by least squares (minimum norm), not taken from the solver.

The linear systems live on the support (other coordinates are mapped to the identity, so
shapes stay fixed under ``jit``): solved densely (``adjoint="dense"``, an LU solve of the
materialised matrix, for small ``d * P``) or by conjugate gradients with Hessian-vector
products (``adjoint="cg"``). ``"auto"`` picks dense up to ``DENSE_LIMIT`` unknowns.

Accuracy: the derivative is exact at the exact solution; at a computed one its error is
of the order of the solution's error, so ask for a tight ``tol`` (the default here is
``1e-9``; use float64).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._precision import full_precision
from ._fit import _prepare, _solve, _Setup, check_lam
from ._losses import Loss
from ._networks import GatedReLUNetwork, relu_network, split_group
from ._patterns import gate_masks
from ._programs.gated_relu import GatedReLUProgram
from ._programs.relu import ReLUProgram
from ._prox import safe_norm
from ._solution import Solution

ADJOINTS = ("auto", "dense", "cg")
DENSE_LIMIT = 512


class _Static(NamedTuple):
    """Hashable configuration of one differentiable solve (``custom_vjp``'s nondiff part)."""

    model: str
    loss: Loss
    solver: object
    slope: float
    bias: bool
    adjoint: str
    active_tol: float
    cg_tol: float
    cg_max_steps: int


def _program(static: _Static, X, y, lam, masks):
    if static.model == "gated_relu":
        return GatedReLUProgram(X=X, masks=masks, y=y, lam=lam, loss=static.loss)
    return ReLUProgram(X=X, masks=masks, y=y, lam=lam, loss=static.loss, slope=static.slope)


def _objective(static: _Static, masks, W, X, y, lam):
    """The convex objective ``phi(W; X, y, lam)`` with the masks held fixed."""
    return _program(static, X, y, lam, masks).objective(W)


# ------------------------------------------------------------------ forward solve
@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _weights(static: _Static, X, y, lam, gates, tol, feasibility_tol, max_steps):
    return _forward(static, X, y, lam, gates, tol, feasibility_tol, max_steps)


def _forward(static, X, y, lam, gates, tol, feasibility_tol, max_steps):
    setup = _Setup(X, y, lam, gates, static.model, static.loss, static.solver, static.slope,
                   static.bias, tol, feasibility_tol, max_steps)
    solution = _solve(setup, lam)
    violation = jnp.zeros((), X.dtype) if solution.violation is None else solution.violation
    aux = (solution.gap, solution.dual_objective, solution.num_steps, solution.result, violation)
    return solution.weights, aux


@full_precision
def _weights_fwd(static, X, y, lam, gates, tol, feasibility_tol, max_steps):
    W, aux = _forward(static, X, y, lam, gates, tol, feasibility_tol, max_steps)
    return (W, aux), (W, X, y, lam, gates)


@full_precision
def _weights_bwd(static, residuals, cotangents):
    W, X, y, lam, gates = residuals
    v = cotangents[0]
    masks = jax.lax.stop_gradient(gate_masks(X, gates))
    grad_W = jax.grad(_objective, argnums=2)

    def hvp(u):
        return jax.jvp(lambda W_: grad_W(static, masks, W_, X, y, lam), (W,), (u,))[1]

    project, constraint_terms = _support(static, masks, W, X, y, lam, grad_W)

    def operator(u):
        pu = project(u)
        return project(hvp(pu)) + (u - pu)

    a = project(_solve_symmetric(static, operator, project(v)))
    extra = constraint_terms(a, v - hvp(a))

    def pairing(X_, y_, lam_):
        value = jnp.vdot(a, grad_W(static, masks, W, X_, y_, lam_))
        return value + extra(X_)

    gX, gy, glam = jax.grad(pairing, argnums=(0, 1, 2))(X, y, lam)
    return (-gX, -gy, -glam, None, None, None, None)


_weights.defvjp(_weights_fwd, _weights_bwd)


def _support(static: _Static, masks, W, X, y, lam, grad_W):
    """The projector onto the directions the solution may move in, and the constraint
    part of the cotangent (zero for gated ReLU)."""
    active = safe_norm(W, axis=0) > 0  # (columns,)
    if static.model == "gated_relu":
        column = active.astype(W.dtype)[None, :]

        def project(u):
            return column * u

        return project, lambda a, r: (lambda X_: 0.0)

    program = _program(static, X, y, lam, masks)
    signs = program.signs()  # S2, (n, 2P)
    XW = X @ W
    scale = safe_norm(X, axis=1)[:, None] * safe_norm(W, axis=0)[None, :]
    # Constraints held active: cone value within active_tol (relative) of zero, on active
    # columns. Inactive columns are held at zero as a whole.
    held = ((signs * XW <= static.active_tol * scale) & active[None, :]).astype(W.dtype)
    gram = jnp.einsum("nd,nj,ne->jde", X, held, X)  # E_j^T E_j, (2P, d, d)
    values, vectors = jnp.linalg.eigh(gram)
    cutoff = 1e3 * jnp.finfo(W.dtype).eps * jnp.max(jnp.linalg.eigvalsh(X.T @ X))
    free = (values <= cutoff).astype(W.dtype) * active.astype(W.dtype)[:, None]
    null = jnp.einsum("jdk,jk,jek->jde", vectors, free, vectors)
    inverse_values = jnp.where(values > cutoff, 1.0 / jnp.where(values > cutoff, values, 1.0), 0.0)
    pinv = jnp.einsum("jdk,jk,jek->jde", vectors, inverse_values, vectors)

    def per_column(M, u):
        return jnp.einsum("jde,ej->dj", M, u)

    def project(u):
        return per_column(null, u)

    def E(X_, u):  # E(X) u for every column at once: held * S2 * (X u), (n, 2P)
        return held * signs * (X_ @ u)

    def constraint_terms(a, residual):
        mu = E(X, per_column(pinv, grad_W(static, masks, W, X, y, lam)))
        b = E(X, per_column(pinv, residual))
        return lambda X_: -jnp.vdot(mu, E(X_, a)) + jnp.vdot(b, E(X_, W))

    return project, constraint_terms


def _solve_symmetric(static: _Static, operator, rhs):
    size = rhs.size
    method = static.adjoint
    if method == "auto":
        method = "dense" if size <= DENSE_LIMIT else "cg"
    if method == "dense":
        basis = jnp.eye(size, dtype=rhs.dtype).reshape((size,) + rhs.shape)
        matrix = jax.vmap(lambda e: operator(e).reshape(-1))(basis).T
        # An LU solve (XLA's symmetric eigensolver on the CPU is ~50x slower), with a ridge
        # at round-off level so that an exactly singular system (a degenerate support)
        # still gives finite numbers.
        ridge = 1e3 * jnp.finfo(rhs.dtype).eps * jnp.max(jnp.abs(jnp.diag(matrix)))
        matrix = 0.5 * (matrix + matrix.T) + ridge * jnp.eye(size, dtype=rhs.dtype)
        return jnp.linalg.solve(matrix, rhs.reshape(-1)).reshape(rhs.shape)
    solution, _ = jax.scipy.sparse.linalg.cg(operator, rhs, tol=static.cg_tol,
                                             maxiter=static.cg_max_steps)
    return solution


# ------------------------------------------------------------------ public
@full_precision
def differentiable_fit(
    X,
    y,
    lam=1e-3,
    *,
    gates=None,
    model: str = "gated_relu",
    loss="squared",
    solver=None,
    tol=1e-9,
    max_steps=None,
    bias: bool = False,
    key=None,
    activation: str = "relu",
    leaky_slope: float = 0.01,
    feasibility_tol=None,
    adjoint: str = "auto",
    active_tol: float = 1e-6,
    cg_tol: float = 1e-10,
    cg_max_steps: int = 1000,
) -> Solution:
    """:func:`cvxnn_jax.fit` whose solution can be differentiated with respect to ``X``,
    ``y`` and ``lam`` (``jax.grad``, ``jax.vjp``, ``jax.jacrev``; also under ``jax.jit``).

    **Arguments:** as :func:`cvxnn_jax.fit` (``gates`` must be an array, or an int with
    concrete ``X``, i.e. when not differentiating with respect to ``X``), plus
    - adjoint: how the adjoint linear system on the support is solved: ``"dense"``
      (LU solve of the ``(d P) x (d P)`` matrix; ``2 d P`` for ReLU), ``"cg"``
      (conjugate gradients with Hessian-vector products) or ``"auto"`` (dense up to
      512 unknowns).
    - active_tol: ``model="relu"``: a cone constraint ``s_k x_k . w_j >= 0`` of a non-zero
      ``w_j`` is held active when its value is ``<= active_tol * ||x_k|| ||w_j||``.
    - cg_tol, cg_max_steps: conjugate-gradient tolerance and budget (``adjoint="cg"``).

    **Returns:** a :class:`Solution` as ``fit``'s. ``weights`` carries the implicit
    derivative; ``network`` and ``objective`` are recomputed from it (so their derivatives
    follow); ``gap``, ``dual_objective``, ``num_steps``, ``result`` and ``violation`` are
    constants. For ``model="relu"``, ``objective`` is the recovered network's objective,
    as in ``fit``.

    The derivative is that of the solution with its support (and, for ReLU, its set of
    active cone constraints) held fixed: exact wherever that set is locally constant,
    which is the generic case. It is computed at the solution the solver returned, so its
    accuracy follows ``tol``. The gates are held fixed: no derivative flows to them.
    There is no ``throw``: check ``solution.converged``.
    """
    if adjoint not in ADJOINTS:
        raise ValueError(f"adjoint must be one of {ADJOINTS}, got {adjoint!r}")
    if not float(active_tol) >= 0:
        raise ValueError(f"active_tol must be >= 0, got {active_tol}")
    setup = _prepare(X, y, lam, check_lam, gates=gates, model=model, loss=loss, solver=solver,
                     tol=tol, max_steps=max_steps, bias=bias, key=key, activation=activation,
                     leaky_slope=leaky_slope, feasibility_tol=feasibility_tol)
    static = _Static(setup.model, setup.loss, setup.solver, setup.slope, setup.bias, adjoint,
                     float(active_tol), float(cg_tol), int(cg_max_steps))
    X, y, lam = setup.X, setup.y, setup.lam
    dtype = X.dtype
    W, aux = _weights(static, X, y, lam, setup.gates, jnp.asarray(setup.tol, dtype),
                      jnp.asarray(setup.feasibility_tol, dtype),
                      jnp.asarray(setup.max_steps, jnp.int32))
    gap, dual_objective, num_steps, result, violation = jax.lax.stop_gradient(aux)
    masks = jax.lax.stop_gradient(gate_masks(X, setup.gates))
    program = _program(static, X, y, lam, masks)
    if setup.model == "gated_relu":
        W1, w2 = split_group(W)
        network = GatedReLUNetwork(gates=setup.gates, W1=W1, w2=w2, bias=setup.bias)
        objective = program.objective(W)
        violation = None
    else:
        network = relu_network(W, setup.slope, setup.bias)
        objective = program.network_objective(W)
    return Solution(
        weights=W,
        gates=setup.gates,
        network=network,
        objective=objective,
        gap=gap,
        dual_objective=dual_objective,
        num_steps=num_steps,
        result=result,
        lam=lam,
        violation=violation,
    )

