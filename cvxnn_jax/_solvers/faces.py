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

import jax
import jax.numpy as jnp
from jax import Array

from .._programs.relu import FaceProgram, ProjectedReLUProgram, ReLUProgram
from .._prox import safe_norm
from ._results import best_lower_bound
from .newton import newton_polish


class ReportedPoint(NamedTuple):
    W: Array  # (d, 2P) the solver's point, or Newton's on the faces where that is better
    objective: Array  # the recovered network's objective at W
    best_dual: Array  # the caller's best dual value, raised by Newton's point's certificate
    violation: Array  # ReLUProgram.violation of W
    products: Array  # the Newton polish's A / A^T product pairs (0 where not run)


def polish_on_faces(condition, program: ReLUProgram, W: Array, active: Array, objective,
                    best_dual, gap, violation, feasibility_tol, max_newton: int, max_cg,
                    tol) -> ReportedPoint:
    """Where ``condition`` holds, Newton on the faces whose rows ``active`` names, from
    ``W``, and the point to report: Newton's when it is better, else ``W``.

    **Arguments:**
    - condition: scalar boolean (traced); where it is false nothing runs and ``W`` with
      the caller's figures comes back.
    - W: ``(d, 2P)`` the solver's point; active: ``(n, 2P)`` boolean, the rows on each
      cone's face (those whose multiplier is positive).
    - objective, best_dual, gap, violation: the solver's own, at ``W``. Newton's point
      is better when it is finite, its gap is below ``gap`` and its violation is no more
      than ``max(feasibility_tol, violation)``.
    - max_newton, max_cg (may be traced), tol: as :func:`newton_polish`.

    The returned ``best_dual`` is a valid lower bound whether or not Newton's point is
    kept. Newton's point is not cut back to the cones: the faces' rows end at slacks of
    round-off size of either sign, and the certificate is honest at a slightly
    infeasible point (its violation is reported).
    """

    def polish(_):
        projected = ProjectedReLUProgram.build(program)
        faces = FaceProgram.build(projected, W, active & (safe_norm(W, axis=0) > 0)[None, :])
        U, products = newton_polish(faces, faces.coordinates(W), max_newton, max_cg, tol)
        W_polished = faces.weights(U)
        rho = -program.loss.grad(program.predict(W_polished), program.y)
        _, lower = projected.certificate(W_polished, None, rho, projected.rmatvec(rho))
        raised = best_lower_bound(best_dual, lower)
        polished_objective = program.network_objective(W_polished)
        polished_violation = program.violation(W_polished)
        better = (jnp.isfinite(polished_objective) & jnp.all(jnp.isfinite(W_polished))
                  & (polished_objective - raised < gap)
                  & (polished_violation <= jnp.maximum(feasibility_tol, violation)))
        return ReportedPoint(jnp.where(better, W_polished, W),
                             jnp.where(better, polished_objective, objective), raised,
                             jnp.where(better, polished_violation, violation), products)

    def skip(_):
        return ReportedPoint(W, objective, best_dual, violation, jnp.zeros((), jnp.int32))

    return jax.lax.cond(condition, polish, skip, None)


def keep_better_feasible(previous_W: Array, previous_objective, previous_violation,
                         point: ReportedPoint, feasibility_tol) -> ReportedPoint:
    """``point``, or the previously reported point where both meet ``feasibility_tol``
    and the previous one's objective is lower.

    AL and ADMM report a fresh point at every check (their iterate, or Newton's on the
    faces); a polished point can be followed by an iterate that is worse. Among points
    within the tolerance the lower objective is the tighter certificate (both share the
    best dual value); an infeasible point never displaces a feasible one's report, nor
    the reverse, so a solve that never reaches the cones reports its last iterate.
    """
    keep = ((previous_violation <= feasibility_tol) & (point.violation <= feasibility_tol)
            & (previous_objective < point.objective))
    return point._replace(W=jnp.where(keep, previous_W, point.W),
                          objective=jnp.where(keep, previous_objective, point.objective),
                          violation=jnp.where(keep, previous_violation, point.violation))
