"""
Stage 3: numerical kernels on stacked arrays.

:mod:`.batches` stacks groups of equal size and maps between the stacks
and the data (scatter/gather), :mod:`.likelihood` is the one GLS and the
profiled (restricted) likelihood on the batches, :mod:`.univariate` its fast
special case for one value per group, :mod:`.moments` the method-of-moments
and variance-components estimators and :mod:`.cochran` Cochran's Q, both
from that GLS.  Numpy and scipy only; imports only from the stages above.
"""
