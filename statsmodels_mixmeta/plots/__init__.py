"""
Plots meta-analysts look at (forest, shrinkage, profile likelihood,
dose-response curves), drawn with matplotlib (the optional ``plot`` extra)
from what a results object hands them; results methods call these.
"""
