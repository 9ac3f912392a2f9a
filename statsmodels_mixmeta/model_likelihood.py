"""
The profiled likelihood of a model as a function of its structure
parameters: the mixin of :class:`statsmodels_mixmeta.model.MixMeta` that
stacks its groups into batches, chooses the kernel, and exposes the
objective (``loglike``, ``score``, ``hessian``, ``information``,
``start_params``) that statsmodels' optimisers and the fitting schedule
work on.

Part of the model (ranked just before ``model.py``): it reads the design,
random part and start values the model wires.
"""
import dataclasses

import numpy as np

from .fitting import schedule as _schedule
from .fitting.objective import Objective, psi_units
from .kernels.batches import build_batches
from .kernels.likelihood import ProfiledLikelihood
from .kernels.univariate import UnivariateLikelihood


class ModelLikelihood:
    """Batches, kernel and profiled objective of
    :class:`~statsmodels_mixmeta.model.MixMeta`, as functions of theta."""


    def _kernel_long(self):
        """The design's long format with the levels this model estimates
        (none for fixed effects), as the batches take it."""
        long, n = self.design.long, self.random.n_levels
        if n == len(long.Z):
            return long
        return dataclasses.replace(long, Z=long.Z[:n],
                                   level_codes=long.level_codes[:n])

    @property
    def _batches(self):
        """Groups stacked by size, built on first use."""
        batches = self.__dict__.get("_batch_cache")
        if batches is None:
            design = self.design
            batches = build_batches(
                self._kernel_long(), design.n_groups,
                within_cov=(design.within_cov if design.group_cov is None
                            else None),
                group_cov=design.group_cov)
            self.__dict__["_batch_cache"] = batches
        return batches

    def psis(self, params):
        """The Psi of every level at structure parameters ``params``."""
        return self.random.psis(params)

    def psi_jacobians(self, params):
        """``dPsi_l / dtheta_l`` of every level."""
        return self.random.jacobians(params)

    def profiled_likelihood(self, reml=None, batched=False):
        """
        The profiled objective: an object with ``evaluate(psis)``,
        ``loglike(psis)``, ``psi_gradient(state)`` and
        ``information(state, psi_jacobians)``.

        One outcome with one value per group uses the fully vectorised
        kernel of :mod:`statsmodels_mixmeta.kernels.univariate` unless ``batched``.
        """
        if reml is None:
            reml = self.method == "reml"
        design = self.design
        long = design.long
        Z = long.Z[:self.random.n_levels]
        scalar = (long.n_values == design.n_groups and self.n_outcomes == 1
                  and self.random.n_levels <= 1 and design.group_cov is None
                  and all(z.shape[1] == 1 for z in Z))
        if scalar and not batched:
            z = Z[0][:, 0] if Z else None
            return UnivariateLikelihood(
                long.y, long.X, design.within_cov[long.row, 0, 0], z,
                reml, xtx=design.xtx, basis=design.basis)
        return ProfiledLikelihood(self._batches, reml, basis=self.design.basis)

    def gls_state(self, params):
        """
        The GLS fit at structure parameters ``params``: ``beta``,
        ``cov_beta``, ``llf`` and what the derivatives need (remembered for
        the last few parameter vectors evaluated).
        """
        return self.objective.state(params)

    @property
    def kernel(self):
        """The profiled likelihood of the Psi's this model fits (built once;
        see :meth:`profiled_likelihood`)."""
        lik = self.__dict__.get("_kernel_cache")
        if lik is None:
            lik = self.profiled_likelihood()
            self.__dict__["_kernel_cache"] = lik
        return lik

    @property
    def objective(self):
        """
        The profiled objective as a function of the structure parameters
        (:class:`statsmodels_mixmeta.fitting.objective.Objective`):
        ``loglike``, ``score``, ``hessian``, ``information``, ``state``,
        ``bounds``, ... of ``theta``; what the fitting schedule works on.
        """
        objective = self.__dict__.get("_objective_cache")
        if objective is None:
            objective = Objective(
                self.kernel, self.random, self.nobs, units=self._psi_units(),
                explain=self._singular_studies.marginal_error)
            self.__dict__["_objective_cache"] = objective
        return objective

    def _psi_units(self):
        """Variance unit of every level's Psi, from the within-study
        variances of the observed values and the random designs."""
        d = self.design
        if d.group_cov is None:
            variances = np.diagonal(d.within_cov, axis1=1,
                                    axis2=2)[d.observed]
        else:
            variances = np.concatenate([np.diag(m) for m in d.group_cov])
        return psi_units(variances, d.long.Z[:self.random.n_levels])

    def loglike(self, params):
        """Profiled (restricted) log-likelihood at structure parameters."""
        return self.objective.loglike(params)

    def score(self, params):
        """Analytic gradient of :meth:`loglike`."""
        return self.objective.score(params)

    def information(self, params):
        """Expected (Fisher) information of the structure parameters."""
        return self.objective.information(params)

    def hessian(self, params):
        """
        Analytic Hessian of :meth:`loglike`.

        The kernels give the observed second derivatives through ``Psi``;
        the curvature of the structure itself (``d2Psi / dtheta2``, which
        needs no data) is differenced from its analytic Jacobian.
        """
        return self.objective.hessian(params)

    # ------------------------------------------------------------------
    def start_params(self, igls_iter=10):
        """
        Starting structure parameters
        (:func:`statsmodels_mixmeta.fitting.schedule.start_values`).

        From ``init_psi`` (default ``0.001 I`` in the data's variance
        unit at every level), ``igls_iter`` Fisher-scoring steps on the free
        entries of the Psi's, then the structures' parameters of the result.
        """
        return _schedule.start_values(self.objective, self._start_psis,
                                      igls_iter)
