"""ADMM for the cone-constrained ReLU program (Bai, Gautam & Sojoudi 2022; CRONOS 2024).

Splitting, with ``W = [V | U]`` of shape ``(d, 2P)``, ``F W = sum(C * X W, 1)`` the
predictions and ``G W = S2 * X W`` the cone values:

    min  L(z) + lam sum_j ||w'_j|| + I(s >= 0)
    s.t. F W = z,   W = W',   G W = s

With one penalty ``beta`` for the three constraints, the ``W``-step solves

    (I + F^T F + G^T G) W = F^T (z - lz) + (W' - lw) + G^T (s - ls),

whose matrix does not depend on ``beta``, so it is factored once and ``beta`` can be
rebalanced for free. In the coordinates ``p = (v - u) / sqrt 2`` and
``q = (v + u) / sqrt 2`` it splits: ``G^T G = I (x) X^T X`` (``S2^2 = 1``) and ``F``
sees only ``p``, so the ``q`` block is ``I + X^T X`` for every pattern (one ``d x d``
inverse) and the ``p`` block is ``B + 2 F0^T F0`` (``dP x dP``, with
``B = I (x) (I + X^T X)`` the same block-diagonal and ``F0 p = sum(c * X p, 1)``). The
``p`` block is inverted once, on its smaller side when that side is at most
``max_direct_size``: directly (``dP x dP``) when ``dP <= n``, otherwise through the
Woodbury identity, whose ``n x n`` matrix
``I / 2 + F0 B^-1 F0^T = I / 2 + (X (I + X^T X)^-1 X^T) * (c c^T)`` is formed from
products. Each iteration applies the inverses by matrix products (:func:`_inverse`):
the ``dP x dP`` one reads ``(dP)^2`` numbers from memory (128 MB at dP = 4000), the
Woodbury solve two products with ``X`` and one with the ``n x n`` inverse. When neither
side is small enough, conjugate gradients with a randomised Nystrom preconditioner,
warm-started from the previous ``W``.

The other steps are proximal maps: ``z`` by the loss's prox (``Loss.prox``), ``W'`` by
the group soft-threshold, ``s`` by projection on ``s >= 0``; over-relaxation with
``relaxation`` in (0, 2). Every ``check_every`` iterations the certificate of
:class:`ReLUProgram` is evaluated at ``W'`` (the group-sparse copy) with
``rho = -grad L`` at its predictions and the cone multipliers ``gamma = -beta ls``
(``>= 0`` by the ``s``-step), and ``beta`` is rebalanced from the primal and dual
residuals. The loop stops when ``gap <= tol * objective`` and the violation is
``<= feasibility_tol``.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._precision import full_precision
from .._programs.relu import ReLUProgram, weighted_row_sums
from ._results import RESULTS, best_lower_bound, certified_and_feasible
from .faces import keep_better_feasible, polish_on_faces

_SQRT_HALF = 0.5**0.5


class ADMMState(NamedTuple):
    W: Array  # (d, 2P) the smooth-step variable
    W_split: Array  # (d, 2P) the group-sparse copy W'
    z: Array  # (n,) predictions copy
    t: Array  # (n, 2P) the cone slack s = max(t, 0) and its scaled multiplier ls = min(t, 0)
    lz: Array  # scaled multipliers
    lw: Array
    beta: Array
    num_steps: Array
    objective: Array
    gap: Array
    best_dual: Array
    violation: Array
    z_previous: Array  # z, t and W' one iteration earlier, for the dual residual at
    t_previous: Array  # a check (the residuals are needed only there)
    W_split_previous: Array
    polished_at: Array  # num_steps at the last face polish
    polish_interval: Array  # iterations from it to the next one (doubles after each)
    W_report: Array  # (d, 2P) the point reported: W', or the face polish's when better
    result: RESULTS


class _Factorisation(NamedTuple):
    p_inverse: Array  # the p block's inverse (dP, dP), or (0, 0)
    samples_inverse: Array  # the Woodbury matrix's inverse (n, n), or (0, 0)
    q_inverse: Array  # (I + X^T X)^-1, (d, d): also B^-1 = I (x) it, for the p block
    nystrom_vectors: Array  # (dP, r) or (0, 0)
    nystrom_values: Array  # (r,)


class ADMM(eqx.Module):
    """Hyper-parameters of ADMM (static: changing them recompiles).

    **Fields:**
    - relaxation: over-relaxation factor in (0, 2) (1 is plain ADMM).
    - initial_penalty: ``beta`` at the start, in units of the loss's smoothness.
    - check_every: iterations between certificate evaluations and ``beta`` updates.
    - balance: rebalance ``beta`` when one residual exceeds the other by this factor.
    - max_direct_size: largest ``min(n, d * P)`` whose matrix is inverted once (the
      ``p`` block when ``d * P <= n``, else its Woodbury ``n x n`` matrix); beyond it,
      conjugate gradients. At 8192 the inverse takes 512 MB in float64. Measured at
      n = 5000, d = 50, P = 500 (2 CPU cores): 70 ms an iteration with the ``5000 x
      5000`` inverse, 738 ms with conjugate gradients (the same iterates to 1e-3).
    - cg_max_steps, cg_tol: conjugate gradients (when iterative), warm-started.
    - nystrom_rank: rank of the randomised Nystrom preconditioner.
    - prediction_weight, cone_weight: weights of the constraints ``F W = z`` and
      ``G W = s`` in the penalty (``W = W'`` has weight 1). The ``n x 2P`` cone rows
      outnumber the others; at weight 1 they dominated the W-step and ADMM crept
      towards the optimum. Measured (d = 20, P = 200 or d = 5, P = 20, tol and
      feasibility 1e-6): 0.1 certified n = 100 in 7 260 iterations (15 380 at 1),
      n = 200 in 9 320 (12 710), n = 500 in 44 590 (53 500); ``python
      benchmarks/admm_weights.py``.
    - polish_newton: Newton steps at most of the face polish (0 turns it off), tried at
      a check whose ``W'`` is within ``polish_violation`` times ``feasibility_tol`` of
      the cones and is not certified, at most once per interval (``polish_every``
      iterations at first, see ``polish_every_max``):
      Newton on the faces of the cones whose rows have positive multipliers, reported
      when its projected certificate is better
      (:func:`~cvxnn_jax._solvers.faces.polish_on_faces`); the iteration goes on from
      its own iterates. Its products are not counted in ``num_steps`` (iterations).
    - polish_every_max: the interval between polishes doubles after each one that does
      not certify, from ``polish_every`` up to this. A polish before the multipliers
      name the right faces fails and costs up to ``polish_newton * polish_cg`` products;
      at a fixed interval of 500 such failures took about half of the time to certify
      the n = 500 benchmark problem.
    - polish_cg: conjugate-gradient iterations at most per Newton step.
    - refinement_steps: iterative-refinement steps of each W-step against the system's
      own products (``None``: 1 below float64, 0 in float64). The system's condition
      number reaches 1.6e4 on scikit-learn's wine data with 100 patterns: solved in
      float32 through its inverse, the W-step's relative residual was 9e-4, and one
      refinement step took it to 1e-6 (``tests/test_relu.py``). Measured in float32 (ad
      hoc, 2 CPU cores, lam = 1e-3, 100 patterns): wine, logistic loss, tol 1e-4, a
      relative gap of 0.17 after 100 000 iterations without refinement, certified in
      42 230 with it (float64 certifies 1e-6 in 8 780); diabetes, squared loss, tol 1e-6:
      5.8e-2 after 100 000 iterations without, 1.4e-4 with (neither certifies: float32's
      floor). An iteration costs one more solve and two more products (n = 200, d = 5,
      20 patterns: 0.10 s against 0.16 s for the same 7 510 iterations). In float64 the
      residual is 1e-12 without it.
    """

    relaxation: float = eqx.field(static=True, default=1.6)
    initial_penalty: float = eqx.field(static=True, default=1.0)
    check_every: int = eqx.field(static=True, default=10)
    balance: float = eqx.field(static=True, default=10.0)
    max_direct_size: int = eqx.field(static=True, default=8192)
    cg_max_steps: int = eqx.field(static=True, default=50)
    cg_tol: float = eqx.field(static=True, default=1e-10)
    nystrom_rank: int = eqx.field(static=True, default=64)
    prediction_weight: float = eqx.field(static=True, default=1.0)
    cone_weight: float = eqx.field(static=True, default=0.1)
    polish_newton: int = eqx.field(static=True, default=8)
    polish_cg: int = eqx.field(static=True, default=400)
    polish_violation: float = eqx.field(static=True, default=10.0)
    polish_every: int = eqx.field(static=True, default=500)
    polish_every_max: int = eqx.field(static=True, default=4000)
    refinement_steps: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if not 0 < self.relaxation < 2:
            raise ValueError(f"relaxation must lie in (0, 2), got {self.relaxation}")
        if not self.initial_penalty > 0:
            raise ValueError(f"initial_penalty must be > 0, got {self.initial_penalty}")
        if self.check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {self.check_every}")
        if not self.balance > 1:
            raise ValueError(f"balance must be > 1, got {self.balance}")
        if self.nystrom_rank < 1 or self.cg_max_steps < 1:
            raise ValueError("nystrom_rank and cg_max_steps must be >= 1")
        if self.polish_newton < 0 or self.polish_cg < 1 or self.polish_every < 1:
            raise ValueError(f"polish_newton must be >= 0, polish_cg and polish_every >= 1, "
                             f"got {self.polish_newton}, {self.polish_cg}, {self.polish_every}")
        if not self.polish_violation >= 1:
            raise ValueError(f"polish_violation must be >= 1, got {self.polish_violation}")
        if self.refinement_steps is not None and self.refinement_steps < 0:
            raise ValueError(f"refinement_steps must be >= 0 or None, got {self.refinement_steps}")
        if self.polish_every_max < self.polish_every:
            raise ValueError(f"polish_every_max must be >= polish_every, got "
                             f"{self.polish_every_max} < {self.polish_every}")


# ---------------------------------------------------------------- linear algebra
def _p_operator(program: ReLUProgram, P_mat: Array, a_s, a_z) -> Array:
    """``(I + a_s I (x) X^T X + 2 a_z F0^T F0) p`` for ``p`` as a ``(d, P)`` matrix."""
    c = program.coefficients()[:, : program.num_patterns]
    Z = program.X @ P_mat
    return P_mat + program.transpose_times(
        a_s * Z + 2.0 * a_z * c * weighted_row_sums(c, Z)[:, None])


def _dense_p_block(program: ReLUProgram, a_s, a_z) -> Array:
    """The ``p`` block as a dense ``(dP, dP)`` matrix (column-major over patterns)."""
    X = program.X
    n, d = X.shape
    P = program.num_patterns
    c = program.coefficients()[:, :P]
    F0 = (X[:, :, None] * c[:, None, :]).reshape(n, d * P)  # index (k, i * P + j)
    gram = X.T @ X
    eye_P = jnp.eye(P, dtype=X.dtype)
    blockdiag = (gram[:, None, :, None] * eye_P[None, :, None, :]).reshape(d * P, d * P)
    return jnp.eye(d * P, dtype=X.dtype) + a_s * blockdiag + 2.0 * a_z * F0.T @ F0


def _nystrom(program: ReLUProgram, rank: int, key, a_s, a_z) -> tuple[Array, Array]:
    """Randomised Nystrom approximation ``U diag(lam) U^T`` of the p block minus I."""
    d, P = program.X.shape[1], program.num_patterns
    dtype = program.X.dtype
    omega = jax.random.normal(key, (d * P, rank), dtype)
    omega, _ = jnp.linalg.qr(omega)
    apply = jax.vmap(
        lambda v: (_p_operator(program, v.reshape(d, P), a_s, a_z) - v.reshape(d, P)).reshape(-1),
        in_axes=1, out_axes=1,
    )
    Y = apply(omega)
    shift = jnp.finfo(dtype).eps * jnp.linalg.norm(Y)
    Y = Y + shift * omega
    B = omega.T @ Y
    chol = jnp.linalg.cholesky(0.5 * (B + B.T))
    E = jax.scipy.linalg.solve_triangular(chol, Y.T, lower=True).T
    U, sigma, _ = jnp.linalg.svd(E, full_matrices=False)
    return U, jnp.maximum(sigma**2 - shift, 0.0)


def _woodbury_matrix(program: ReLUProgram, q_inverse: Array, a_z) -> Array:
    """``I / (2 a_z) + F0 B^-1 F0^T`` (``(n, n)``), ``B^-1 = I (x) K^-1`` with ``K^-1``
    the ``q_inverse``: entry ``(k, l)`` is ``x_k^T K^-1 x_l * <c_k, c_l>``."""
    X = program.X
    c = program.coefficients()[:, : program.num_patterns]
    kernel = X @ q_inverse @ X.T
    return jnp.eye(X.shape[0], dtype=X.dtype) / (2.0 * a_z) + kernel * (c @ c.T)


def _factorise(program: ReLUProgram, solver: "ADMM") -> _Factorisation:
    X = program.X
    n, d = X.shape
    P = program.num_patterns
    a_s, a_z = solver.cone_weight, solver.prediction_weight
    q_inverse = _inverse(jnp.eye(d, dtype=X.dtype) + a_s * X.T @ X)
    empty = jnp.zeros((0, 0), X.dtype)
    no_nystrom = (empty, jnp.zeros((0,), X.dtype))
    if d * P <= min(n, solver.max_direct_size):
        return _Factorisation(_inverse(_dense_p_block(program, a_s, a_z)), empty, q_inverse,
                              *no_nystrom)
    if n <= solver.max_direct_size:
        return _Factorisation(empty, _inverse(_woodbury_matrix(program, q_inverse, a_z)),
                              q_inverse, *no_nystrom)
    U, values = _nystrom(program, min(solver.nystrom_rank, d * P), jax.random.PRNGKey(0), a_s, a_z)
    return _Factorisation(empty, empty, q_inverse, U, values)


def _inverse(M: Array) -> Array:
    """The inverse of the symmetric positive definite ``M``, by its Cholesky factor (the
    q block, the p block and the Woodbury matrix are all ``>= I`` up to a positive
    weight, so well conditioned). Each iteration then applies it by one matrix product:
    it reads the matrix once, where a Cholesky solve's two triangular sweeps read the
    factor twice and run sequentially (measured on 2 cores, n = 500, d = 20, P = 200:
    0.88 ms per W-step with the Woodbury matrix's factor, 0.74 ms with its inverse)."""
    factor = jnp.linalg.cholesky(M)
    inverse = jax.scipy.linalg.cho_solve((factor, True), jnp.eye(M.shape[0], dtype=M.dtype))
    return 0.5 * (inverse + inverse.T)


def _solve_p(program, factors: _Factorisation, rhs: Array, guess: Array, solver: "ADMM") -> Array:
    d, P = guess.shape
    if factors.p_inverse.shape[0] > 0:
        return (factors.p_inverse @ rhs.reshape(-1)).reshape(d, P)
    if factors.samples_inverse.shape[0] > 0:
        # Woodbury: (B + 2 a_z F0^T F0)^-1 = B^-1 - B^-1 F0^T S^-1 F0 B^-1, with
        # F0 t = rowsum(X * (c t^T)) and F0^T u = (X^T * u) c: products over the P
        # patterns, not over the d features (0.2 against 0.05 ms at n=500, d=20, P=200).
        c = program.coefficients()[:, :P]
        t = factors.q_inverse @ rhs
        u = factors.samples_inverse @ jnp.sum(program.X * (c @ t.T), axis=1)
        return t - factors.q_inverse @ ((program.X.T * u) @ c)
    U, values = factors.nystrom_vectors, factors.nystrom_values
    # Nystrom preconditioner for I + H with H ~ U diag(values) U^T (mu = 1):
    # P^{-1} = U diag((values_r + 1) / (values + 1)) U^T + (I - U U^T).
    top = values[-1] + 1.0

    def precondition(r):
        r = r.reshape(-1)
        coeff = U.T @ r
        return (U @ (coeff * (top / (values + 1.0) - 1.0)) + r).reshape(d, P)

    x, _ = jax.scipy.sparse.linalg.cg(
        lambda v: _p_operator(program, v, solver.cone_weight, solver.prediction_weight), rhs,
        x0=guess, M=precondition,
        tol=solver.cg_tol, maxiter=solver.cg_max_steps,
    )
    return x


def _solve_W(program, factors, rhs: Array, W_guess: Array, solver) -> Array:
    P = program.num_patterns
    rhs_v, rhs_u = rhs[:, :P], rhs[:, P:]
    rhs_p, rhs_q = _SQRT_HALF * (rhs_v - rhs_u), _SQRT_HALF * (rhs_v + rhs_u)
    guess_p = _SQRT_HALF * (W_guess[:, :P] - W_guess[:, P:])
    p = _solve_p(program, factors, rhs_p, guess_p, solver)
    q = factors.q_inverse @ rhs_q
    return jnp.concatenate([_SQRT_HALF * (p + q), _SQRT_HALF * (q - p)], axis=1)


def _W_system(program, W: Array, XW: Array, solver) -> Array:
    """``(I + a_z F^T F + a_s G^T G) W`` from ``W`` and ``X W`` (``S2^2 = 1``)."""
    C = program.coefficients()
    return W + program.transpose_times(solver.prediction_weight * C
                                       * weighted_row_sums(C, XW)[:, None]
                                       + solver.cone_weight * XW)


def _refined_solve_W(program, factors, rhs: Array, guess: Array, solver,
                     refinement_steps: int) -> tuple[Array, Array]:
    """The W-step's solution and its ``X W``, with ``refinement_steps`` steps of
    iterative refinement against :func:`_W_system` (``ADMM.refinement_steps``)."""
    W = _solve_W(program, factors, rhs, guess, solver)
    XW = program.X @ W
    for _ in range(refinement_steps):
        residual = rhs - _W_system(program, W, XW, solver)
        W = W + _solve_W(program, factors, residual, jnp.zeros_like(W), solver)
        XW = program.X @ W
    return W, XW


# ---------------------------------------------------------------- the loop
@full_precision
def admm_solve(program: ReLUProgram, W0, tol, feasibility_tol, max_steps,
               solver: ADMM = ADMM()) -> ADMMState:
    """Solve the ReLU program by ADMM from ``W0`` (``(d, 2P)``).

    Stops when ``gap <= tol * objective`` and ``violation <= feasibility_tol`` (checked
    every ``check_every`` iterations) or after ``max_steps`` iterations. Pure and
    jit/vmap-compatible.
    """
    dtype = W0.dtype
    tol = jnp.asarray(tol, dtype)
    feasibility_tol = jnp.asarray(feasibility_tol, dtype)
    max_steps = jnp.asarray(max_steps, jnp.int32)
    loss, y = program.loss, program.y
    X = program.X
    n = y.shape[0]
    C, S2 = program.coefficients(), program.signs()
    factors = _factorise(program, solver)
    alpha = solver.relaxation
    a_z, a_s = solver.prediction_weight, solver.cone_weight

    def F(W):
        return weighted_row_sums(C, X @ W)

    refinement_steps = solver.refinement_steps
    if refinement_steps is None:
        refinement_steps = 1 if jnp.finfo(dtype).bits < 64 else 0

    def step(state: ADMMState, record_previous: bool = False) -> ADMMState:
        beta = state.beta
        # s - ls = |t|: one (n, 2P) array read where s and ls were two.
        rhs = program.transpose_times(a_z * C * (state.z - state.lz)[:, None]
                                      + a_s * S2 * jnp.abs(state.t)) + (
            state.W_split - state.lw
        )
        W, XW = _refined_solve_W(program, factors, rhs, state.W, solver, refinement_steps)
        Fw = alpha * weighted_row_sums(C, XW) + (1 - alpha) * state.z
        Wr = alpha * W + (1 - alpha) * state.W_split
        # The s-step s = max(Gw + ls, 0) and ls + Gw - s = min(Gw + ls, 0): both are
        # parts of t = Gw + ls, with Gw = alpha G W + (1 - alpha) s.
        t = alpha * S2 * XW + (1 - alpha) * jnp.maximum(state.t, 0.0) + jnp.minimum(state.t, 0.0)
        z = loss.prox(Fw + state.lz, 1.0 / (a_z * beta), y)
        W_split = program.prox(Wr + state.lw, 1.0 / beta)
        lz = state.lz + Fw - z
        lw = state.lw + Wr - W_split
        new = state._replace(W=W, W_split=W_split, z=z, t=t, lz=lz, lw=lw,
                             num_steps=state.num_steps + 1)
        if record_previous:
            return new._replace(z_previous=state.z, t_previous=state.t,
                                W_split_previous=state.W_split)
        return new

    def residuals(state: ADMMState):
        # Primal and dual residuals of the last iteration (Boyd et al. section 3.3) in
        # the unscaled variables: computed at checks only, where beta is rebalanced
        # (every iteration they cost two more products, about 20% of its time).
        XW = X @ state.W
        primal = jnp.sqrt(
            a_z * jnp.sum((weighted_row_sums(C, XW) - state.z) ** 2)
            + jnp.sum((state.W - state.W_split) ** 2)
            + a_s * jnp.sum((S2 * XW - jnp.maximum(state.t, 0.0)) ** 2)
        )
        dual = state.beta * jnp.sqrt(
            jnp.sum((program.transpose_times(a_z * C * (state.z - state.z_previous)[:, None]
                                             + a_s * S2 * (jnp.maximum(state.t, 0.0)
                                                           - jnp.maximum(state.t_previous, 0.0)))
                     + (state.W_split - state.W_split_previous)) ** 2)
        )
        return primal, dual

    def certify(state: ADMMState) -> ADMMState:
        W = state.W_split
        rho = -loss.grad(F(W), y)
        gamma = a_s * state.beta * jnp.maximum(-state.t, 0.0)
        gap, lower, upper = program.certificate(W, rho, gamma)
        best_dual = best_lower_bound(state.best_dual, lower)
        gap = upper - best_dual
        violation = program.violation(W)
        # Newton on the faces that the multipliers name (see AugmentedLagrangian): near
        # the optimum it certifies what the multipliers' rescaled dual point cannot.
        needs_polish = (solver.polish_newton > 0) & (
            state.num_steps - state.polished_at >= state.polish_interval) & (
            violation <= solver.polish_violation * feasibility_tol) & ~(
            (gap <= tol * jnp.abs(upper)) & (violation <= feasibility_tol))

        W_report, upper, best_dual, violation, _ = keep_better_feasible(
            state.W_report, state.objective, state.violation, polish_on_faces(
                needs_polish, program, W, gamma > 0, upper, best_dual, gap, violation,
                feasibility_tol, solver.polish_newton, solver.polish_cg, tol), feasibility_tol)
        gap = upper - best_dual
        finite = jnp.isfinite(upper) & jnp.all(jnp.isfinite(W_report))
        # Residual balancing; the scaled multipliers follow beta.
        primal, dual = residuals(state)
        ratio = primal / jnp.maximum(dual, jnp.finfo(dtype).tiny)
        factor = jnp.where(ratio > solver.balance, 2.0,
                           jnp.where(ratio < 1.0 / solver.balance, 0.5, 1.0))
        return state._replace(
            beta=state.beta * factor,
            lz=state.lz / factor, lw=state.lw / factor,
            t=jnp.maximum(state.t, 0.0) + jnp.minimum(state.t, 0.0) / factor,
            objective=upper, gap=gap, best_dual=best_dual, violation=violation,
            polished_at=jnp.where(needs_polish, state.num_steps, state.polished_at),
            polish_interval=jnp.where(
                needs_polish, jnp.minimum(2 * state.polish_interval, solver.polish_every_max),
                state.polish_interval),
            W_report=W_report,
            result=RESULTS.where(finite, state.result, RESULTS.nonfinite),
        )

    converged, keep_going = certified_and_feasible(tol, feasibility_tol, max_steps)

    def block(state):
        # The last iteration before a check records the previous z, t and W' for the
        # residuals; the others leave them alone, since carrying them through the loop
        # costs a copy of the (n, 2P) t every iteration (about 8% of one at n = 500).
        stop_at = jnp.minimum(state.num_steps + solver.check_every, max_steps)
        state = jax.lax.while_loop(lambda s: s.num_steps < stop_at - 1, step, state)
        return certify(step(state, record_previous=True))

    t0 = jnp.maximum(S2 * (X @ W0), 0.0)  # s = max(G W0, 0), ls = 0
    state = ADMMState(
        W=W0, W_split=W0, z=F(W0), t=t0,
        lz=jnp.zeros((n,), dtype), lw=jnp.zeros_like(W0),
        beta=jnp.asarray(solver.initial_penalty * loss.smoothness(n), dtype),
        num_steps=jnp.zeros((), jnp.int32),
        objective=program.network_objective(W0), gap=jnp.full((), jnp.inf, dtype),
        best_dual=jnp.full((), -jnp.inf, dtype), violation=program.violation(W0),
        z_previous=F(W0), t_previous=t0, W_split_previous=W0,
        polished_at=jnp.zeros((), jnp.int32),
        polish_interval=jnp.asarray(solver.polish_every, jnp.int32), W_report=W0,
        result=RESULTS.successful,
    )
    state = jax.lax.while_loop(keep_going, block, state)
    out_of_steps = (state.result == RESULTS.successful) & ~converged(state)
    return state._replace(
        result=RESULTS.where(out_of_steps, RESULTS.max_steps_reached, state.result)
    )
