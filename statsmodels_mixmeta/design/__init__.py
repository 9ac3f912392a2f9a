"""
Stage 2: from formulas or arrays to one validated design.

:mod:`.formula` evaluates formulas, :mod:`.inputs` turns constructor
arguments into arrays and names, :mod:`.covariance` builds and checks the
within-study covariances, :mod:`.random_terms` parses ``random=`` and codes
the grouping levels, :mod:`.core` holds the design itself and the missing
rule.  Imports only from :mod:`statsmodels_mixmeta.structures`.
"""
