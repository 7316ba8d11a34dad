"""cvxnn_jax: neural networks trained to global optimality through convex programs."""

import importlib.metadata

from ._decomposition import cone_decomposition as cone_decomposition
from ._fit import ConvergenceWarning as ConvergenceWarning, fit as fit, relu_network as relu_network
from ._losses import (
    LogisticLoss as LogisticLoss,
    Loss as Loss,
    SquaredLoss as SquaredLoss,
    get_loss as get_loss,
)
from ._networks import (
    GatedReLUNetwork as GatedReLUNetwork,
    ReLUNetwork as ReLUNetwork,
    nonconvex_objective as nonconvex_objective,
)
from ._patterns import (
    add_bias_column as add_bias_column,
    enumerate_gates_1d as enumerate_gates_1d,
    enumerate_gates_2d as enumerate_gates_2d,
    gate_masks as gate_masks,
    sample_gates as sample_gates,
    unique_patterns as unique_patterns,
)
from ._programs.gated_relu import GatedReLUProgram as GatedReLUProgram
from ._programs.relu import ReLUProgram as ReLUProgram
from ._prox import (
    prox_group_l2 as prox_group_l2,
    prox_l1 as prox_l1,
    prox_nonnegative as prox_nonnegative,
    safe_norm as safe_norm,
)
from ._solution import Solution as Solution
from ._solvers._results import RESULTS as RESULTS
from ._solvers.admm import ADMM as ADMM, admm_solve as admm_solve
from ._solvers.al import AugmentedLagrangian as AugmentedLagrangian, al_solve as al_solve
from ._solvers.fista import FISTA as FISTA, FISTAState as FISTAState, fista_solve as fista_solve

__version__ = importlib.metadata.version("cvxnn_jax")
