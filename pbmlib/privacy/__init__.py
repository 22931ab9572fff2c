"""Privacy measures and attacks (numpy tier: never imports Keras).

:func:`audit` is the entry point: every attack that knows a scheme's published mechanism
against one release, the calibrated worst case and intervals (:mod:`pbmlib.privacy.audit`).
Underneath: similarity with its floor (:mod:`.similarity`), the matchers (:mod:`.matchers`),
block attacks and reassembly (:mod:`.attacks`), the adaptive suite (:mod:`.adaptive`), the
mechanism-aware likelihood attacks (:mod:`.mechanism`, :mod:`.likelihood`), the model-level
membership attacks (:mod:`.lira`), their shared kernels (:mod:`.kernels`) and statistics
(:mod:`.statistics`).
"""

from .audit import AttackSettings, Audit, audit, combine_audits

__all__ = ["audit", "combine_audits", "Audit", "AttackSettings"]
