"""cvxnn_jax: neural networks trained to global optimality through convex programs."""

import importlib.metadata

from ._decomposition import cone_decomposition as cone_decomposition
from ._fit import (
    ConvergenceWarning as ConvergenceWarning,
    default_relu_solver as default_relu_solver,
    fit as fit,
)
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
    relu_network as relu_network,
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
from ._programs.lasso import LassoProgram as LassoProgram
from ._programs.relu import (
    ProjectedReLUProgram as ProjectedReLUProgram,
    ReLUProgram as ReLUProgram,
)
from ._cones import Faces as Faces, empty_faces as empty_faces, project_cones as project_cones
from ._prox import (
    prox_group_l2 as prox_group_l2,
    prox_l1 as prox_l1,
    prox_nonnegative as prox_nonnegative,
    safe_norm as safe_norm,
)
from ._solution import Solution as Solution
from ._solvers._results import RESULTS as RESULTS
from ._solvers.admm import ADMM as ADMM, admm_solve as admm_solve
from ._solvers.ipm import InteriorPoint as InteriorPoint, ipm_solve as ipm_solve
from ._solvers.working_set import (
    WorkingSet as WorkingSet,
    WorkingSetState as WorkingSetState,
    working_set_solve as working_set_solve,
)
from ._solvers.al import AugmentedLagrangian as AugmentedLagrangian, al_solve as al_solve
from ._solvers.fista import (
    FISTA as FISTA,
    FISTAOutcome as FISTAOutcome,
    FISTAState as FISTAState,
    fista_queue as fista_queue,
    fista_solve as fista_solve,
)

# Deep networks on 1-D data and threshold networks (issue 5).
from ._deep_networks import (
    DeepNarrowNetwork as DeepNarrowNetwork,
    DeepThresholdNetwork as DeepThresholdNetwork,
    ThresholdNetwork as ThresholdNetwork,
)
from ._programs.lasso_1d import (
    Features1D as Features1D,
    Solution1D as Solution1D,
    dictionary_1d as dictionary_1d,
    fit_1d as fit_1d,
    recover_network_1d as recover_network_1d,
    unique_features as unique_features,
)
from ._programs.threshold import (
    ShatteredSolution as ShatteredSolution,
    deep_threshold_network as deep_threshold_network,
    fit_deep_threshold as fit_deep_threshold,
    fit_threshold as fit_threshold,
    recover_threshold_network as recover_threshold_network,
    shattered_threshold_solution as shattered_threshold_solution,
)

# Regularisation paths, devices, implicit differentiation and the layer (issue 4).
from ._devices import fit_data_parallel as fit_data_parallel, fit_path_sharded as fit_path_sharded
from ._implicit import differentiable_fit as differentiable_fit
from ._layer import ConvexLayer as ConvexLayer
from ._path import fit_path as fit_path


# Pattern growth from the dual certificate, and certifying any network (issue 7).
from ._certify import Certificate as Certificate, certify as certify
from ._growth import Grow as Grow, GrowthInfo as GrowthInfo, GrowthWarning as GrowthWarning
from ._oracle import (
    Oracle as Oracle,
    Violations as Violations,
    exact_gated_violation as exact_gated_violation,
    exact_violation as exact_violation,
    search_violations as search_violations,
)

__version__ = importlib.metadata.version("cvxnn_jax")
