"""
Stage 2: from formulas or arrays to one frozen, validated design.

:mod:`.builder` turns the model's arguments into a design (the work of
lme4's ``lFormula``): :mod:`.formula` evaluates formulas (with
:mod:`.formula_frames`; :mod:`.new_data` rebuilds the predictors of new
data), :mod:`.inputs` turns constructor arguments into arrays and names,
:mod:`.covariance` builds and checks the within-study covariances (with
:mod:`.halfvec`, :mod:`.from_sds` and :mod:`.within_checks`),
:mod:`.random_terms` parses ``random=``, :mod:`.grouping` codes the grouping
levels, :mod:`.core` holds the missing rule and the estimability check.
:mod:`.frozen` is the design itself (with its long format, ``X'X`` and
conditioning basis) and :mod:`.resample` derives designs from it
(``subset``, ``with_endog``).  :mod:`.dose_response` prepares ``addS`` for
dose-response data (Greenland & Longnecker's covariances of log relative
risks).
Imports only from :mod:`statsmodels_mixmeta.structures`.
"""
