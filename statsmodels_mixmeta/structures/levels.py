"""
The random part as the optimiser sees it: one Psi structure per grouping
level, their parameters concatenated outer level first (the analogue of
lme4's ``mkMkPar``), and per-level options (``bscov``, ``psi_fix``,
``init_psi``) spread over the levels.
"""
import numpy as np

from .psi import STRUCTURE_NAMES, make_structure


def canonical_bscov(bscov):
    """
    ``bscov`` with its structure names in lower case (R's names are matched
    case-insensitively, as ``method`` is): a string, or the strings of a
    per-level list or dict; anything else, and unknown names (for the
    error message to quote), are returned unchanged.
    """
    lower = (lambda name: name.lower() if isinstance(name, str)
             and name.lower() in STRUCTURE_NAMES else name)
    if isinstance(bscov, dict):
        return {level: lower(name) for level, name in bscov.items()}
    if isinstance(bscov, (list, tuple)):
        return type(bscov)(lower(name) for name in bscov)
    return lower(bscov)


def per_level(value, level_names, what):
    """
    Spread a per-level option over the levels.

    A dict is keyed by grouping factor (levels not named get ``None``); a
    list or tuple with one entry per level, when there are several levels,
    gives them in level order; anything else (a scalar, a string, an
    ndarray) applies to every level.
    """
    n = len(level_names)
    if isinstance(value, dict):
        unknown = [key for key in value if key not in level_names]
        if unknown:
            raise ValueError(
                f"{what} is keyed by {unknown}, which are not grouping "
                f"levels; the levels are {list(level_names)}")
        return [value.get(name) for name in level_names]
    if isinstance(value, (list, tuple)) and n > 1:
        if len(value) != n:
            raise ValueError(
                f"{what} has {len(value)} entries for {n} grouping levels "
                f"{list(level_names)}; give one per level, a dict keyed by "
                "level, or an array for all levels")
        return list(value)
    if isinstance(value, (list, tuple)) and n == 1 and len(value) == 1 \
            and isinstance(value[0], str):
        return list(value)
    return [value] * n


class RandomPart:
    """
    The random part: one Psi structure per grouping level.

    The structure parameters of all levels are concatenated, outer level
    first, into the ``theta`` the optimiser sees.

    Parameters
    ----------
    level_names : list of str or None
        Grouping factor of each level (``None`` for the implicit level of a
        model without ``random``, where every row is its own group).
    structures : list of PsiStructure
    effect_names : list of list of str
        Labels of each level's Psi rows/columns.
    """

    def __init__(self, level_names, structures, effect_names):
        self.level_names = list(level_names)
        self.structures = list(structures)
        self.effect_names = list(effect_names)
        sizes = [s.n_params for s in self.structures]
        edges = np.concatenate(([0], np.cumsum(sizes))).astype(int)
        self.slices = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
        self.n_params = int(edges[-1])

    @property
    def n_levels(self):
        return len(self.structures)

    def split(self, theta):
        theta = np.asarray(theta, dtype=float)
        return [theta[sl] for sl in self.slices]

    def psis(self, theta):
        """Psi of every level."""
        return tuple(s.psi(t) for s, t in zip(self.structures,
                                              self.split(theta)))

    def jacobians(self, theta):
        """``dPsi_l / dtheta_l`` of every level, each ``(T_l, r_l, r_l)``."""
        return [s.jacobian(t) for s, t in zip(self.structures,
                                              self.split(theta))]

    def curvature(self, theta, psi_gradients):
        """
        ``sum_l <dl/dPsi_l, d2Psi_l / dtheta_s dtheta_t>``, block diagonal
        over levels.
        """
        out = np.zeros((self.n_params, self.n_params))
        for s, t, sl, grad in zip(self.structures, self.split(theta),
                                  self.slices, psi_gradients):
            if s._square_scale is not None:     # psi = c theta^2
                out[sl, sl] = 2.0 * s._square_scale * grad[0, 0]
            elif s.n_params:
                out[sl, sl] = np.einsum("rs,turs->tu", grad, s.curvature(t))
        return out

    def start(self, psis):
        """Structure parameters approximating the given Psi's."""
        parts = [s.start(p) for s, p in zip(self.structures, psis)]
        return np.concatenate(parts) if parts else np.empty(0)

    def kinked(self):
        """Parameters with a kink at 0 (see ``PsiStructure.kinked``)."""
        if "_kinked" not in self.__dict__:
            parts = [s.kinked() for s in self.structures]
            self.__dict__["_kinked"] = (np.concatenate(parts) if parts
                                        else np.zeros(0, dtype=bool))
        return self.__dict__["_kinked"]

    def initial_psis(self, init_psi, scale):
        """``init_psi`` of every level (default ``scale * I``); fixed
        structures keep their own Psi."""
        out = []
        for name, s, init in zip(self.level_names, self.structures,
                                 init_psi):
            if s.n_params == 0:
                out.append(s.psi(np.empty(0)))
            elif init is None:
                out.append(scale * np.eye(s.dim))
            else:
                init = np.atleast_2d(np.asarray(init, dtype=float))
                if init.shape != (s.dim, s.dim):
                    where = "" if name is None else f" of level {name!r}"
                    raise ValueError(
                        f"init_psi{where} must be {s.dim}x{s.dim}; got "
                        f"shape {init.shape}")
                out.append(init)
        return out

    def param_names(self):
        names = []
        for level, s, labels in zip(self.level_names, self.structures,
                                    self.effect_names):
            prefix = "" if level is None or self.n_levels == 1 \
                else f"{level}:"
            names += [prefix + n for n in s.param_names(labels)]
        return names


def random_part(level_names, bscov, psi_fix, k, effect_names):
    """One Psi structure per grouping level."""
    bscovs = per_level(canonical_bscov(bscov), level_names, "bscov")
    fixes = per_level(psi_fix, level_names, "psi_fix")
    structures = []
    for name, b, fix, labels in zip(level_names, bscovs, fixes,
                                    effect_names):
        try:
            structures.append(make_structure(b, len(labels), fix))
        except ValueError as err:
            where = "" if name is None else f" (level {name!r})"
            raise ValueError(f"{err}{where}") from None
    return RandomPart(level_names, structures,
                              effect_names[:len(level_names)])
