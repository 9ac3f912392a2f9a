"""Benchmarks of statsmodels-mixmeta against its targets and other Python packages (see README.md)."""
