"""
Stage 4: fitting over a profiled objective of ``theta``.

:mod:`~statsmodels_mixmeta.fitting.objective` (theta -> llf, score,
Hessian, information, bounds, the data's units),
:mod:`~statsmodels_mixmeta.fitting.optimizer` (the steps: IGLS-like start,
damped Newton, stationarity, boundary) and
:mod:`~statsmodels_mixmeta.fitting.schedule` (their order, the hand-over to
statsmodels' optimiser, fallbacks and the verdict);
:mod:`~statsmodels_mixmeta.fitting.profile` (the profile likelihood of one
natural-scale Psi parameter, the others re-optimised, over the charts of
:mod:`~statsmodels_mixmeta.fitting.psi_charts` by the box-constrained
Newton method of :mod:`~statsmodels_mixmeta.fitting.box_newton`).
:mod:`~statsmodels_mixmeta.fitting.estimator_checks` says which estimator
can be fitted to which design, before anything is fitted.  Imports only from the
stages above (structures, design, kernels).
"""
