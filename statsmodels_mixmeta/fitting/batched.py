"""
Bookkeeping of the batched climbs of ``fit_many`` (one outcome, several
outcomes, several levels): the part of an evaluation that belongs to some
problems, writing it back, and the stopping rule of a step.
"""
import dataclasses

import numpy as np


def take(ev, index):
    """The evaluation (a dataclass of arrays with a problem axis first) of
    problems ``index``; fields not computed (None) stay None."""
    return type(ev)(**{f.name: (None if getattr(ev, f.name) is None
                                else getattr(ev, f.name)[index])
                       for f in dataclasses.fields(ev)})


def put(ev, index, part):
    """Write ``part`` into the problems ``index`` of ``ev``, field by
    field where both hold it."""
    for f in dataclasses.fields(ev):
        target, value = getattr(ev, f.name), getattr(part, f.name)
        if target is not None and value is not None:
            target[index] = value


def settled(new, old, new_llf, old_llf, step_tol, llf_tol):
    """
    Problems whose last step moved every parameter by at most ``step_tol
    (1 + |old|)`` and the log-likelihood by at most ``llf_tol (1 +
    |old_llf|)``; ``new``, ``old`` are ``(R, n)``.
    """
    small = (np.abs(new - old) <= step_tol * (1 + np.abs(old))).all(axis=1)
    flat = np.abs(new_llf - old_llf) <= llf_tol * (1 + np.abs(old_llf))
    return small & flat
