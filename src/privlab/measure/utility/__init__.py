"""Utility measures: how useful protected data or learned features remain.

- :mod:`~privlab.measure.utility.accuracy` — accuracy of a classifier on given inputs, batched.
- :mod:`~privlab.measure.utility.clustering` — Hungarian clustering accuracy, k-means relabelling.
- :mod:`~privlab.measure.utility.ssl_eval` — linear probe and kNN accuracy of frozen features.
"""

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
