"""
Stage 3: numerical kernels on stacked arrays.

:mod:`.batches` stacks groups of equal size, :mod:`.likelihood` is the GLS
and profiled (restricted) likelihood on the batches, :mod:`.univariate` the
same for one value per group, :mod:`.moments` the method-of-moments and
variance-components estimators.  Numpy and scipy only; imports only from the
stages above.
"""
