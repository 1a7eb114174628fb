"""Stage 5 — measurements: each returns a value with its unit (and a confidence interval where statistical).

- :mod:`privlab.measure.mi` — mutual information (``ite-dkl``, ``ksg``, ``gaussian``), nats.
- :mod:`privlab.measure.similarity` — per-image MSE / PSNR / SSIM / MS-SSIM / LPIPS / classifier agreement
  (``score``, ``SIMILARITY_METRICS``); :mod:`privlab.measure.lpips` loads backbone weights from local files only.
- :mod:`privlab.measure.functional` — the maths as pure functions (kNN backends, estimators).
"""

from privlab.measure.mi import MI_ESTIMATORS, MIResult, estimate_mi

__all__ = ["MI_ESTIMATORS", "MIResult", "estimate_mi"]

import privlab.measure.mi_neural  # noqa: F401  (registers infonce, nwj, mine, smile)
