"""Newton polish on the faces of the ReLU program's cones, shared by its constrained solvers.

The certificates of the interior point, of augmented-Lagrangian dual ascent and of ADMM
take ``rho = -grad L`` at the iterate's predictions; the dual point's rescaling turns
the iterate's small errors into a relative gap that lags far behind the objective (a
column whose cone-projected dual norm is ``1.001 lam`` alone costs about ``1e-3``). Once
a solver's multipliers name the rows on each cone's face (a row whose multiplier is
positive), Newton's method on those faces (:class:`FaceProgram`, a column-group lasso
that is smooth on its support) reaches the optimum over them to round-off, and the
projected certificate of that point (exact cone projections, no multipliers) then closes
the gap. With the wrong faces Newton's point is infeasible or worse, and is not kept.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .._programs.relu import FaceProgram, ProjectedReLUProgram, ReLUProgram
from .._prox import safe_norm
from ._results import best_lower_bound
from .newton import newton_polish


class PolishedPoint(NamedTuple):
    W: Array  # (d, 2P) Newton's point on the faces (uncut: it may be slightly infeasible)
    objective: Array  # the recovered network's objective at W
    best_dual: Array  # the caller's best dual value, raised by W's projected certificate
    gap: Array  # objective - best_dual
    violation: Array  # ReLUProgram.violation of W
    products: Array  # the Newton polish's A / A^T product pairs
    better: Array  # W is finite, its gap below the caller's, and no less feasible


def polish_on_faces(program: ReLUProgram, W: Array, active: Array, best_dual, gap, violation,
                    feasibility_tol, max_newton: int, max_cg, tol) -> PolishedPoint:
    """Newton on the faces whose rows ``active`` names, from ``W``, and its certificate.

    **Arguments:**
    - W: ``(d, 2P)`` the solver's point; active: ``(n, 2P)`` boolean, the rows on each
      cone's face (those whose multiplier is positive).
    - best_dual, gap, violation: the solver's own, at ``W``; the polished point is
      ``better`` when its gap is below ``gap`` and its violation no more than
      ``max(feasibility_tol, violation)``.
    - max_newton, max_cg (may be traced), tol: as :func:`newton_polish`.

    The returned ``best_dual`` is a valid lower bound whether or not the point is kept.
    Newton's point is not cut back to the cones: the faces' rows end at slacks of
    round-off size of either sign, and the certificate is honest at a slightly
    infeasible point (its violation is reported).
    """
    projected = ProjectedReLUProgram.build(program)
    active = active & (safe_norm(W, axis=0) > 0)[None, :]
    faces = FaceProgram.build(projected, W, active)
    U, products = newton_polish(faces, faces.coordinates(W), max_newton, max_cg, tol)
    W_polished = faces.weights(U)
    rho = -program.loss.grad(program.predict(W_polished), program.y)
    _, lower = projected.certificate(W_polished, None, rho, projected.rmatvec(rho))
    best_dual = best_lower_bound(best_dual, lower)
    objective = program.network_objective(W_polished)
    polished_gap = objective - best_dual
    polished_violation = program.violation(W_polished)
    better = (jnp.isfinite(objective) & jnp.all(jnp.isfinite(W_polished)) & (polished_gap < gap)
              & (polished_violation <= jnp.maximum(feasibility_tol, violation)))
    return PolishedPoint(W_polished, objective, best_dual, polished_gap, polished_violation,
                         products, better)
