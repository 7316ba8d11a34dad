"""Status of a solve, with human-readable messages (optimistix-style ``RESULTS``)."""

import equinox as eqx


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
