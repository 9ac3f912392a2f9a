"""
Stage 4: the optimiser over a profiled objective of ``theta``.

Imports only from the stages above (structures, design, kernels).
"""
