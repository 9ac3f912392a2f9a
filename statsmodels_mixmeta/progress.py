"""
A progress display on stderr for long runs (the two-stage helper's groups,
``fit_many``'s chunks): tqdm's bar when tqdm is installed, else one text
line rewritten in place.
"""
import sys
import time


class Progress:
    """
    A progress display on ``sys.stderr``: tqdm's bar when tqdm is
    installed, else one line rewritten at most every half second.

    Parameters
    ----------
    total : int
        Units of work (groups, problems).
    enabled : bool or None
        True or False force it; None shows it only when stderr is a
        terminal and ``total`` is at least ``min_total``.
    desc : str
        The label in front of the count.
    unit : str
        What is counted, singular.
    min_total : int
        The least ``total`` for which ``enabled=None`` shows it.
    """

    def __init__(self, total, enabled=None, desc="progress", unit="item",
                 min_total=0):
        stream = sys.stderr
        if enabled is None:
            isatty = getattr(stream, "isatty", None)
            enabled = bool(isatty and isatty()) and total >= min_total
        self.enabled, self.total, self.count = bool(enabled), total, 0
        self.desc, self.unit = desc, unit
        self.stream, self._bar, self._last = stream, None, 0.0
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._write()
        else:
            self._bar = tqdm(total=total, file=stream, desc=desc, unit=unit)

    def update(self, n):
        """Count ``n`` more units done."""
        if not self.enabled:
            return
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif time.monotonic() - self._last > 0.5 or self.count >= self.total:
            self._write()

    def _write(self):
        self._last = time.monotonic()
        self.stream.write(f"\r{self.desc}: {self.count}/{self.total} "
                          f"{self.unit}s")
        self.stream.flush()

    def close(self):
        """End the display (a newline after the text line)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False


def chunk_progress(total, step, enabled=None, desc="progress", unit="item"):
    """
    A :class:`Progress` over ``total`` units processed ``step`` at a time
    (updated per chunk): ``enabled=None`` shows it only when stderr is a
    terminal and there are several chunks.
    """
    if enabled is None and total <= step:
        enabled = False
    return Progress(total, enabled, desc=desc, unit=unit)
