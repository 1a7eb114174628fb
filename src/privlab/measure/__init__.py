"""Stage 5 — measurements: each returns a value with its unit (and a confidence interval where statistical).

- :mod:`privlab.measure.mi` — mutual information (``ite-dkl``, ``ksg``, ``gaussian``, ``auto``, neural bounds), nats;
  ground-truth tasks, calibration, MI reduction.
- :mod:`privlab.measure.image` — per-image similarity (``score``, ``SIMILARITY_METRICS``: mse, psnr, ssim, ms-ssim,
  lpips, classifier, semsim), each metric's unit, direction and kind declared once at its registration.
- :mod:`privlab.measure.semsim` — the learned SemSim metric, annotations, and agreement of metrics with humans.
- :mod:`privlab.measure.utility` — clustering accuracy, linear probe / kNN accuracy of features.
- :mod:`privlab.measure.functional` — the maths as pure functions (kNN backends, estimators, bounds, pixel metrics).

Every sub-package is imported here, so every metric and estimator is registered once ``privlab.measure`` is.
"""

from privlab.registry import import_submodules

import_submodules(__name__, __path__)
