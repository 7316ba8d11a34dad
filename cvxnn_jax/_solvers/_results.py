"""Status of a solve, with human-readable messages (optimistix-style ``RESULTS``)."""

import equinox as eqx
import jax.numpy as jnp


class RESULTS(eqx.Enumeration):
    successful = "converged: the certificate is below the requested tolerance"
    max_steps_reached = (
        "the maximum number of steps was reached before the certificate fell below the "
        "tolerance; increase max_steps or loosen tol"
    )
    infeasible = (
        "the certificate is below the tolerance but the iterate violates the cone "
        "constraints by more than feasibility_tol (a cone projection ran out of iterations)"
    )
    nonfinite = "the iterates became non-finite (NaN or inf); check the data and lam"
    stalled = (
        "the interior point's barrier parameter fell far below the certificate's gap, so "
        "more iterations would not close it, and Newton polish on the cones' faces did not "
        "certify its point either; loosen tol, or try solver='fista'"
    )
    working_set_full = (
        "the working set's gates stopped changing (or its rounds ran out) before the "
        "certificate met the tolerance: the solve restricted to them used every one "
        "while a gate outside them was still violated (the optimum needs more non-zero "
        "gates than WorkingSet.capacity, or nearly as many); raise capacity (about twice "
        "the non-zero gates expected) or max_rounds, or use solver='fista'"
    )


def best_lower_bound(best_dual, lower):
    """The larger of the best dual value so far and ``lower``, a new one (a non-finite
    ``lower``, from a dual point that could not be scaled to feasibility, is ignored)."""
    return jnp.maximum(best_dual, jnp.where(jnp.isfinite(lower), lower, -jnp.inf))


def certified_and_feasible(tol, feasibility_tol, max_steps):
    """``(converged, keep_going)`` predicates of a constrained solver's ``while_loop``.

    The state needs ``gap``, ``objective``, ``violation``, ``num_steps`` and ``result``:
    converged means ``gap <= tol * |objective|`` and ``violation <= feasibility_tol``; the
    loop goes on while not converged, under ``max_steps`` and still successful.
    """

    def converged(state):
        return (state.gap <= tol * jnp.abs(state.objective)) & (state.violation <= feasibility_tol)

    def keep_going(state):
        return ~converged(state) & (state.num_steps < max_steps) & (
            state.result == RESULTS.successful)

    return converged, keep_going
