"""A primal-dual interior-point method for the cone-constrained ReLU program.

The program (``_programs/relu.py``, ``W = [V | U]`` of shape ``(d, 2P)``)

    min_W  L(sum(C * X W, 1)) + lam sum_j ||w_j||   subject to   S2 * (X W) >= 0

has ``2P n`` linear inequalities and ``2P`` second-order cones (the group norms). Both get
a logarithmic barrier with the same weight ``mu``:

- the inequalities through slacks ``s = S2 * (X W)`` and multipliers ``z`` (``(n, 2P)``),
  primal-dual, ``s * z = mu`` on the central path;
- the cone ``||w_j|| <= t_j`` through ``lam t_j - mu log(t_j^2 - ||w_j||^2)``, minimised
  over ``t_j`` in closed form, ``t_j = (mu + sqrt(mu^2 + lam^2 ||w_j||^2)) / lam``. What is
  left is a smooth, convex group norm ``h_mu(w_j)`` with gradient ``lam w_j / t_j`` (of norm
  below ``lam``) and Hessian ``(lam / t_j) (I - lam^2 w_j w_j^T / (D_j (D_j + mu)))``,
  ``D_j = sqrt(mu^2 + lam^2 ||w_j||^2)``: a ``d x d`` block per column, well defined at 0.

Each iteration is one Newton step on the perturbed optimality conditions (Mehrotra's
predictor-corrector: the centring ``sigma = (mu_aff / mu)^3`` from an affine step that uses
the same factorisation), followed by Gondzio's multiple centrality correctors: each one
aims at a longer step, pulls the products ``s * z`` that this longer step would push out
of ``[0.1, 10] sigma mu`` back into that band, and is kept only if it lengthens the step.
They reuse the factorisation, so they are cheap where it dominates. Eliminating ``s`` and
``z`` leaves

    (B + A^T Lambda A) dW = rhs,   B_j = X^T diag(z_j / s_j) X + Hess h_mu(w_j),

with ``A`` the prediction map (``n x 2Pd``) and ``Lambda`` the loss's curvature (diagonal).
``B`` is block diagonal and ``A^T Lambda A`` has rank ``n``, so the system is solved by the
Woodbury identity with one ``n x n`` Cholesky factorisation of
``I + Lambda^(1/2) A B^-1 A^T Lambda^(1/2) = I + K K^T``. The ``v`` and ``u`` columns of a
pattern have the same prediction coefficients up to sign, so their inverse blocks are
summed first and ``K`` is ``(n, Pd)``. When ``n > P d`` the ``Pd x Pd`` matrix
``I + K^T K`` is factored instead (``InteriorPoint.factor_side``). Cost per iteration:
``O(n P d min(n, P d) + n P d^2)`` flops and ``O(min(n, P d)^2 + n P d)`` memory,
independent of the accuracy asked for; the iteration count grows slowly with the problem
(tens of iterations).

Start: each column at a multiple of its gate ``g_j``, which lies in its cone (``S_j X g_j
>= 0`` by the definition of the pattern), so the start is feasible; rows on the cone's
boundary (ties) get a small positive slack and the Newton steps remove the residual. The
multiple (``InteriorPoint.initial_scale``) puts the start deep inside the cones, which
saves iterations.

Certificate (DESIGN.md section 2): on the central path ``X^T (C_j rho + S2_j z_j) =
lam w_j / t_j`` with ``rho = -grad L``, a dual point of norm below ``lam``; the solver
evaluates :meth:`ReLUProgram.certificate` with ``rho`` and ``gamma = z`` every iteration
(the dual point is rescaled to feasibility when it is not on the path), the upper bound
being the recovered network's objective. It stops when ``gap <= tol * objective`` and the
cone violation is ``<= feasibility_tol``. On exit, columns that the barrier keeps at a
tiny non-zero norm (``||w_j|| < 2e4 mu / lam``) are set to zero when that keeps the
certificate, so the recovered network has only its real neurons.

That certificate's dual direction ``rho = -grad L`` carries about the square root of the
iterate's error, so on large problems the gap can sit at a floor near 1e-6 while ``mu``
keeps falling. The loop then stops (the barrier's own gap, about ``mu`` per inequality,
below ``1e-3 tol`` of the objective) and Newton's method on the faces of the cones named
by the multipliers (``z > s``) finishes the solve; its point is kept if its projected
certificate is better. If that still misses ``tol`` the result is ``RESULTS.stalled``.

Float64 is the precision this method is meant for. The blocks' condition numbers grow
like ``1 / mu``, and the Woodbury correction subtracts large, nearly equal terms: measured
in float32 on the n = 500 benchmark problem, the iterates stall 10% above the optimum
(relative gap 0.14 after 100 iterations, reported as ``max_steps_reached``).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._precision import full_precision
from .._programs.relu import ReLUProgram, weighted_row_sums
from .._prox import safe_norm
from ._results import RESULTS, best_lower_bound, certified_and_feasible
from .faces import polish_on_faces


class InteriorPoint(eqx.Module):
    """Hyper-parameters of the interior-point method (static: changing them recompiles).

    **Fields:**
    - step_fraction: fraction of the step to the boundary of ``s, z > 0`` that is taken.
    - min_centering: lower bound of Mehrotra's centring parameter ``sigma``.
    - initial_scale: the start's weights, in units of weights whose predictions have the
      size of the targets. A start deep inside the cones takes fewer iterations:
      measured on the n = 500 benchmark problem, 58 iterations at 1, 43 at 100 (squared
      loss), 58 and 35 (logistic).
    - refinement_steps: iterative-refinement steps of the corrector's Newton solve
      against the unshifted matrix (each costs two block products and two triangular
      solves). The predictor and the centrality correctors only steer, so they are not
      refined.
    - ridge: diagonal shift of each ``d x d`` block, relative to its largest diagonal
      entry and in units of the dtype's machine epsilon (keeps the factorisation defined
      when round-off exceeds the smallest curvature, late in the solve).
    - factor_side: which Gram matrix of the Woodbury factor ``K`` (``n x Pd``) is
      factored each iteration: ``"samples"`` (``n x n``), ``"weights"`` (``Pd x Pd``),
      or ``"auto"`` (the smaller; ``"weights"`` when ``n > P d``).
    - centrality_correctors: Gondzio's correctors per iteration, at most (each costs one
      solve with the iteration's factors, no factorisation). Measured on the relu_solvers
      benchmark problem (d = 20, 200 patterns): 0 / 2 correctors took 44 / 37 iterations
      at n = 500 and 51 / 41 at n = 2000 (20.99 s / 19.45 s, medians of 3 runs side by
      side on 2 CPU cores: a corrector costs about a tenth of an iteration there; at
      n = 500, where the factorisation weighs less, 3.52 s / 3.46 s, about even).
    """

    step_fraction: float = eqx.field(static=True, default=0.99)
    initial_scale: float = eqx.field(static=True, default=100.0)
    refinement_steps: int = eqx.field(static=True, default=1)
    min_centering: float = eqx.field(static=True, default=1e-6)
    ridge: float = eqx.field(static=True, default=64.0)
    factor_side: str = eqx.field(static=True, default="auto")
    centrality_correctors: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        if not 0 < self.step_fraction < 1:
            raise ValueError(f"step_fraction must lie in (0, 1), got {self.step_fraction}")
        if not 0 <= self.min_centering < 1:
            raise ValueError(f"min_centering must lie in [0, 1), got {self.min_centering}")
        if not self.initial_scale > 0:
            raise ValueError(f"initial_scale must be > 0, got {self.initial_scale}")
        if self.refinement_steps < 0:
            raise ValueError(f"refinement_steps must be >= 0, got {self.refinement_steps}")
        if not self.ridge >= 0:
            raise ValueError(f"ridge must be >= 0, got {self.ridge}")
        if self.centrality_correctors < 0:
            raise ValueError("centrality_correctors must be >= 0, got "
                             f"{self.centrality_correctors}")
        if self.factor_side not in ("auto", "samples", "weights"):
            raise ValueError("factor_side must be 'auto', 'samples' or 'weights', got "
                             f"{self.factor_side!r}")


def ipm_memory_entries(n: int, d: int, num_patterns: int) -> int:
    """Entries the interior point holds for one Newton system on ``(n, d)`` data with
    ``num_patterns`` patterns: the Woodbury factor ``K`` (``n x Pd``) and the product it
    is scaled from, and the smaller of its Gram matrices with its Cholesky factor
    (``2 min(n, Pd)^2``); the ``(n, 2P)`` slacks and multipliers are small beside them."""
    columns = num_patterns * d
    return 2 * n * columns + 2 * min(n, columns) ** 2


class IPMState(NamedTuple):
    W: Array  # (d, 2P) weights
    s: Array  # (n, 2P) slacks of S2 * (X W) >= 0
    z: Array  # (n, 2P) their multipliers
    num_steps: Array
    objective: Array  # recovered network's objective at W
    gap: Array
    best_dual: Array
    violation: Array
    result: RESULTS


def _smoothed_norm(W: Array, lam, mu):
    """Gradient scale ``lam / t`` and Hessian coefficients ``(a, b)`` of ``h_mu`` per column.

    ``grad h_mu(w) = (lam / t) w`` and ``Hess h_mu(w) = a I - b w w^T`` with ``a = lam / t``,
    ``b = a lam^2 / (D (D + mu))``; written so that ``lam = 0`` and ``w = 0`` are safe.
    """
    D = jnp.sqrt(mu**2 + lam**2 * jnp.sum(W * W, axis=0))
    a = lam**2 / (mu + D)  # = lam / t
    b = a * lam**2 / (D * (D + mu))
    return a, b


def _gram(K: Array) -> Array:
    """``K K^T`` from three products of row halves (the fourth block is a transpose):
    3/4 of the flops of ``K @ K.T``, which is most of an iteration's cost."""
    h = K.shape[0] // 2
    top, bottom = K[:h], K[h:]
    corner = bottom @ top.T
    return jnp.concatenate([
        jnp.concatenate([top @ top.T, corner.T], axis=1),
        jnp.concatenate([corner, bottom @ bottom.T], axis=1)], axis=0)


def _max_step(v: Array, dv: Array, fraction) -> Array:
    """Largest ``alpha <= 1`` with ``v + alpha dv >= (1 - fraction) v`` (``v > 0``)."""
    ratio = jnp.where(dv < 0, -v / jnp.where(dv < 0, dv, -1.0), jnp.inf)
    return jnp.minimum(1.0, fraction * jnp.min(ratio))


def initial_point(program: ReLUProgram, directions: Array, initial_scale=1.0):
    """A start inside the cones: column ``j`` (and ``P + j``) along ``directions[:, j]``.

    ``directions`` is ``(d, P)`` with ``S_j * (X g_j) >= 0`` (the gates of the patterns).
    Returns ``(W, s, z)`` with ``s * z`` constant (centred for the inequalities).
    """
    X, y, loss = program.X, program.y, program.loss
    n = X.shape[0]
    dtype = X.dtype
    tiny = jnp.finfo(dtype).tiny
    # Start in the row space of X: a column's component in X's null space changes no
    # prediction and no cone constraint, so only the group norm holds it, and along a
    # column that points into the null space that norm is flat (its radial curvature
    # is about mu / ||w||^2). Started along raw gates, the iterates ran off along it when
    # X had fewer rows than columns or a repeated or zero column (objectives of 1e9 to
    # 1e22 at n = 20, d = 50 and at n = 60, d = 6 with a duplicated column). The Newton
    # steps keep the iterates in the row space, where the norm's curvature across w is
    # lam / ||w||. X (X^+ X g) = X g: the same slacks.
    directions = jnp.linalg.pinv(X) @ (X @ directions)
    g = directions / jnp.maximum(safe_norm(directions, axis=0), tiny)
    P = program.num_patterns
    # Predictions of the size of the targets: each of 2P columns contributes about
    # ||x|| ||w|| / 2 (half the rows are active).
    row = jnp.mean(safe_norm(X, axis=1))
    target = jnp.maximum(jnp.sqrt(jnp.mean(y * y)), 1.0)
    scale = initial_scale * target / (jnp.maximum(row, tiny) * jnp.sqrt(2.0 * P))
    W = scale * jnp.concatenate([g, g], axis=1)
    slack = program.signs() * (X @ W)
    # Ties (rows on the cone's boundary) get a small slack; the residual is removed by
    # the Newton steps.
    floor = 1e-3 * jnp.maximum(jnp.mean(jnp.abs(slack)), tiny)
    s = jnp.maximum(slack, floor)
    dual_size = jnp.maximum(jnp.mean(jnp.abs(loss.grad(program.predict(W), y))), 1.0 / n)
    mu = jnp.mean(s) * dual_size
    return W, s, mu / s


@full_precision
def ipm_solve(program: ReLUProgram, directions: Array, tol, feasibility_tol, max_steps,
              solver: InteriorPoint = InteriorPoint()) -> IPMState:
    """Solve the ReLU program by the interior-point method (module docstring).

    **Arguments:**
    - program: the :class:`ReLUProgram` (``n`` samples, ``d`` features, ``P`` patterns).
    - directions: ``(d, P)`` a point of each cone (the gates), used for the start.
    - tol: relative duality gap to stop at; feasibility_tol: largest cone violation
      (in the units of :meth:`ReLUProgram.violation`).
    - max_steps: iterations at most (each one factorisation).

    Pure and jit/vmap-compatible. Returns an :class:`IPMState`.
    """
    X, y, loss, lam = program.X, program.y, program.loss, program.lam
    dtype = X.dtype
    n, d = X.shape
    P = program.num_patterns
    tol = jnp.asarray(tol, dtype)
    feasibility_tol = jnp.asarray(feasibility_tol, dtype)
    max_steps = jnp.asarray(max_steps, jnp.int32)
    lam = jnp.asarray(lam, dtype)
    C, S2 = program.coefficients(), program.signs()
    c = C[:, :P]
    eye_d = jnp.eye(d, dtype=dtype)
    ridge = solver.ridge * jnp.finfo(dtype).eps
    samples_side = solver.factor_side == "samples" or (
        solver.factor_side == "auto" and n <= P * d)

    def certify(W, z, best_dual):
        """``(gap, best_dual, upper)`` at ``W`` with ``rho = -grad L`` and ``gamma = z``;
        the gap is measured from the best dual value seen so far."""
        _, lower, upper = program.certificate(W, -loss.grad(program.predict(W), y), z)
        best_dual = best_lower_bound(best_dual, lower)
        return jnp.minimum(upper - lower, upper - best_dual), best_dual, upper

    def step(state: IPMState) -> IPMState:
        W, s, z = state.W, state.s, state.z
        mu = jnp.mean(s * z)
        XW = X @ W
        predictions = weighted_row_sums(C, XW)
        grad_loss = loss.grad(predictions, y)
        root = jnp.sqrt(jnp.maximum(loss.curvature(predictions, y), 0.0))
        residual = S2 * XW - s  # primal infeasibility, 0 from a feasible start
        ratio = z / s
        a, b = _smoothed_norm(W, lam, mu)
        blocks = (jnp.einsum("nj,nd,ne->jde", ratio, X, X) + a[:, None, None] * eye_d
                  - b[:, None, None] * jnp.einsum("dj,ej->jde", W, W))
        # Late iterations make the blocks as ill-conditioned as 1e17 (the radial direction
        # of an active neuron has curvature ~ mu / ||w||^2, the rows of its face ~ 1/mu).
        # A shift of ridge times the block's largest diagonal keeps the Cholesky
        # factorisation defined; a block whose factor still breaks down is factored again
        # with a 1000 times larger shift. The shift must stay small: the radial curvature
        # that matters comes from the loss (A^T Lambda A, outside the blocks), and a shift
        # of 1e-11 already held the certificate at 2e-5 on the benchmark problem.
        largest = jnp.max(jnp.diagonal(blocks, axis1=1, axis2=2), axis=1)[:, None, None]
        factor = jnp.linalg.cholesky(blocks + ridge * largest * eye_d)
        broken = ~jnp.all(jnp.isfinite(factor), axis=(1, 2))
        # The retry's input depends on the first factorisation on purpose: with jaxlib
        # 0.10.0 and 0.10.1 on the CPU, two LAPACK calls that XLA may run concurrently
        # inside a while_loop body deadlock the runtime (measured: a loop with two
        # independent batched Cholesky factorisations hung in about half of the runs; with
        # a data dependency, or jaxlib 0.9.2, in none).
        shift = jnp.where(broken, 1e3, 1.0)[:, None, None] * ridge * largest
        retry = jnp.linalg.cholesky(blocks + shift * eye_d)
        factor = jnp.where(broken[:, None, None], retry, factor)
        factor_inv = jax.vmap(
            lambda L: jax.scipy.linalg.solve_triangular(L, eye_d, lower=True))(factor)
        # A B^-1 A^T: columns j and P + j have coefficients c_j and -c_j, so their inverse
        # blocks add: B_j^-1 + B_{P+j}^-1 = R_j^T R_j with R_j from a QR factorisation of
        # the stacked inverse factors (no squaring: late iterations make B_j^-1 as
        # ill-conditioned as 1e15, where a Cholesky of the sum breaks down).
        stacked = jnp.concatenate([factor_inv[:P], factor_inv[P:]], axis=1)  # (P, 2d, d)
        R = jnp.linalg.qr(stacked, mode="r")  # (P, d, d)
        K = (jnp.einsum("nd,jed->nje", X, R) * (root[:, None] * c)[:, :, None]).reshape(
            n, P * d)
        # The rank-n correction is factored on the smaller side of K: I + K K^T (n x n)
        # or I + K^T K (Pd x Pd), related by (I + K K^T)^-1 K = K (I + K^T K)^-1.
        if samples_side:
            correction = jnp.linalg.cholesky(jnp.eye(n, dtype=dtype) + _gram(K))
        else:
            correction = jnp.linalg.cholesky(jnp.eye(P * d, dtype=dtype) + _gram(K.T))

        def scaled_predict(M):  # Lambda^1/2 A M, (n,); M is (d, 2P)
            return root * weighted_row_sums(C, X @ M)

        def scaled_adjoint(v):  # A^T Lambda^1/2 v, (d, 2P); v is (n,)
            return program.transpose_times(C * (root * v)[:, None])

        def apply_inverse(M):  # B^-1 M, column by column; M is (d, 2P)
            half = jnp.einsum("jkd,dj->kj", factor_inv, M)
            return jnp.einsum("jkd,kj->dj", factor_inv, half)

        def shifted_solve(rhs):  # (B + shift + A^T Lambda A)^-1 rhs, by Woodbury
            u = apply_inverse(rhs)
            if samples_side:  # v = (I + K K^T)^-1 Lambda^1/2 A u
                v = jax.scipy.linalg.cho_solve((correction, True), scaled_predict(u))
            else:
                # Lambda^1/2 A u = K h: A u sees only g = u_v - u_u (coefficients c, -c)
                # and K = Lambda^1/2 A_v R^T, so h = R^-T g, and v = K (I + K^T K)^-1 h
                # (no cancellation, unlike (I - K (I + K^T K)^-1 K^T) A u).
                g = (u[:, :P] - u[:, P:]).T  # (P, d)
                h = jax.vmap(lambda Rj, gj: jax.scipy.linalg.solve_triangular(
                    Rj, gj, trans="T", lower=False))(R, g)
                v = K @ jax.scipy.linalg.cho_solve((correction, True), h.reshape(-1))
            return u - apply_inverse(scaled_adjoint(v))

        def newton_matrix(dW):  # (B + A^T Lambda A) dW, without the shift
            return (jnp.einsum("jde,ej->dj", blocks, dW)
                    + scaled_adjoint(scaled_predict(dW)))

        def direction(complementarity, mu_h, refinement_steps, residuals=True):
            """Newton direction for the complementarity target ``s * z + complementarity``;
            with ``residuals=False`` only that target's part (the gradients and the primal
            residual left out), which is what a centrality corrector adds."""
            rhs = program.transpose_times(S2 * complementarity / s)
            if residuals:
                a_h, _ = _smoothed_norm(W, lam, mu_h)
                dual_residual = program.transpose_times(C * grad_loss[:, None] - S2 * z) + a_h * W
                rhs = rhs - dual_residual - program.transpose_times(S2 * z * residual / s)
            # The shift of the blocks would otherwise set a floor under the certificate
            # (measured: a relative gap stuck at 1.07e-6 with a shift of 64 eps, 1.07e-5
            # with 1024 eps); iterative refinement against the unshifted matrix removes it.
            dW = shifted_solve(rhs)
            for _ in range(refinement_steps):
                dW = dW + shifted_solve(rhs - newton_matrix(dW))
            ds = S2 * (X @ dW) + (residual if residuals else 0.0)
            dz = (complementarity - z * ds) / s
            return dW, ds, dz

        # Predictor (affine scaling), then Mehrotra's corrector with the same factors.
        dW, ds, dz = direction(-s * z, mu, 0)
        alpha = jnp.minimum(_max_step(s, ds, 1.0), _max_step(z, dz, 1.0))
        mu_affine = jnp.mean((s + alpha * ds) * (z + alpha * dz))
        sigma = jnp.clip((mu_affine / mu) ** 3, solver.min_centering, 1.0)
        dW, ds, dz = direction(sigma * mu - s * z - ds * dz, sigma * mu,
                               solver.refinement_steps)
        alpha_p = _max_step(s, ds, solver.step_fraction)
        alpha_d = _max_step(z, dz, solver.step_fraction)
        # Gondzio's centrality correctors (Colombo & Gondzio 2008): aim at twice the step,
        # move the products s * z that this trial step leaves outside [0.1, 10] sigma mu
        # back into the band (the large ones by at most 10 sigma mu), and keep the
        # corrected direction only if its steps are 5% longer; stop at the first refusal.
        band_low, band_high = 0.1 * sigma * mu, 10.0 * sigma * mu
        improving = jnp.ones((), bool)
        for _ in range(solver.centrality_correctors):
            products = ((s + jnp.minimum(1.0, 2.0 * alpha_p) * ds)
                        * (z + jnp.minimum(1.0, 2.0 * alpha_d) * dz))
            target = jnp.where(products < band_low, band_low - products,
                               jnp.where(products > band_high,
                                         jnp.maximum(band_high - products, -band_high), 0.0))
            cW, cs, cz = direction(target, sigma * mu, 0, residuals=False)
            trial = (dW + cW, ds + cs, dz + cz)
            trial_p = _max_step(s, trial[1], solver.step_fraction)
            trial_d = _max_step(z, trial[2], solver.step_fraction)
            improving = improving & (trial_p + trial_d >= 1.05 * (alpha_p + alpha_d))
            dW, ds, dz = (jnp.where(improving, new, old)
                          for new, old in zip(trial, (dW, ds, dz)))
            alpha_p = jnp.where(improving, trial_p, alpha_p)
            alpha_d = jnp.where(improving, trial_d, alpha_d)
        W = W + alpha_p * dW
        s = s + alpha_p * ds
        z = z + alpha_d * dz
        gap, best_dual, upper = certify(W, z, state.best_dual)
        finite = jnp.isfinite(upper) & jnp.all(jnp.isfinite(W)) & jnp.all(jnp.isfinite(z))
        return IPMState(
            W=W, s=s, z=z, num_steps=state.num_steps + 1, objective=upper,
            gap=gap, best_dual=best_dual,
            violation=program.violation(W),
            result=RESULTS.where(finite, state.result, RESULTS.nonfinite),
        )

    converged, certifying = certified_and_feasible(tol, feasibility_tol, max_steps)
    zero_objective = program.network_objective(jnp.zeros((d, 2 * P), dtype))

    def stalled(state):
        # The complementarity left, mu per inequality and about 2 mu per group norm, is
        # the duality gap of the barrier's own dual point. Far below the tolerance the
        # iterate is optimal to round-off while the certificate, built from -grad L at
        # the iterate, can lag at a floor: measured on n = 2000, d = 20, 50 patterns,
        # a relative gap of 1.5e-6 from iteration 44 on while mu fell to 1e-30.
        # The scale is at most the objective at W = 0 (feasible, so above the optimum):
        # an iterate that diverges (tiny problems, n <= 5) must not look stalled because
        # its own objective has grown.
        barrier_gap = jnp.mean(state.s * state.z) * (state.s.size + 4 * P)
        scale = jnp.minimum(jnp.abs(state.objective), zero_objective)
        return ~converged(state) & (barrier_gap <= 1e-3 * tol * scale)

    def keep_going(state):
        return certifying(state) & ~stalled(state)

    W0, s0, z0 = initial_point(program, directions, solver.initial_scale)
    gap0, best0, upper0 = certify(W0, z0, jnp.full((), -jnp.inf, dtype))
    state = IPMState(
        W=W0, s=s0, z=z0, num_steps=jnp.zeros((), jnp.int32), objective=upper0,
        gap=gap0, best_dual=best0,
        violation=program.violation(W0), result=RESULTS.successful,
    )
    state = jax.lax.while_loop(keep_going, step, state)
    # Whether the loop stopped as stalled, decided before the clean-up, the polish and
    # the zero check below change the objective that test reads.
    was_stalled = stalled(state)

    # Columns the barrier holds at a tiny norm: zero them when the certificate allows.
    # On the central path a column whose dual norm is q lam (q < 1) has
    # ||w|| = 2 q mu / (lam (1 - q^2)): below 2e4 mu / lam unless q > 0.9999, while a
    # neuron's norm does not shrink with mu.
    mu = jnp.mean(state.s * state.z)
    cut = 2e4 * mu / jnp.where(lam > 0, lam, jnp.inf)
    tiny_columns = safe_norm(state.W, axis=0) < cut
    W_clean = jnp.where(tiny_columns[None, :], 0.0, state.W)
    gap_c, best_c, upper_c = certify(W_clean, state.z, state.best_dual)
    use_clean = (gap_c <= jnp.maximum(state.gap, tol * jnp.abs(upper_c))) & jnp.isfinite(upper_c)
    state = _keep_if(use_clean,
                     state._replace(W=W_clean, objective=upper_c, gap=gap_c, best_dual=best_c,
                                    violation=program.violation(W_clean)),
                     state)
    state = _polish_if_uncertified(program, state, tol, feasibility_tol, converged)
    # W = 0 is in every cone: never report a point worse than it (tiny problems, n of
    # 1-5 with d = 3, can end uncertified far above it).
    W_zero = jnp.zeros_like(state.W)
    gap_0, best_0, upper_0 = certify(W_zero, state.z, state.best_dual)
    state = _keep_if(upper_0 < state.objective,
                     state._replace(W=W_zero, objective=upper_0, gap=gap_0, best_dual=best_0,
                                    violation=jnp.zeros_like(state.violation)),
                     state)
    failed = (state.result == RESULTS.successful) & ~converged(state)
    return state._replace(result=RESULTS.where(
        failed, RESULTS.where(was_stalled, RESULTS.stalled, RESULTS.max_steps_reached),
        state.result))


def _keep_if(condition, new: IPMState, old: IPMState) -> IPMState:
    """``new`` where the scalar ``condition`` holds, else ``old``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def _polish_if_uncertified(program: ReLUProgram, state: IPMState, tol, feasibility_tol,
                           converged) -> IPMState:
    """Newton polish on the faces of the cones at the interior point's exit, when its
    certificate has not reached ``tol`` (:func:`~cvxnn_jax._solvers.faces.polish_on_faces`).

    The interior point's certificate uses ``rho = -grad L`` at its iterate, whose error
    is about the square root of the objective's, and the dual point's rescaling turns
    that into a relative gap floor (about 1e-6 at n = 2000 and 10 000 with d = 20).
    Newton's method on the faces (a row is on its face where the multiplier exceeds the
    slack, ``z > s``) pins the predictions down to round-off, and the projected
    certificate of the polished point is then kept if it is better. Measured on
    n = 2000, d = 20, 50 patterns: the loop stops as stalled after 36 iterations at a
    relative gap of 1.6e-6 (before, 200 iterations did not move it), and the polished
    point is certified at 2.3e-8.
    """
    needed = ~converged(state) & (state.result == RESULTS.successful)
    W, objective, best_dual, violation, _ = polish_on_faces(
        needed, program, state.W, state.z > state.s, state.objective, state.best_dual,
        state.gap, state.violation, feasibility_tol, 20, 500, tol)
    # Newton's point not kept, its certificate may still narrow the exit point's gap.
    gap = jnp.where(needed, jnp.minimum(state.gap, objective - best_dual), state.gap)
    return state._replace(W=W, objective=objective, gap=gap, best_dual=best_dual,
                          violation=violation)
