"""The ``fnas`` strategy (docs/DESIGN.md, "Screening" and "The veto rule"): MnasNet's PPO
controller with the uncertainty-aware critic and the experience buffer.

- :mod:`~fnas.strategies.fnas.config`: its settings, :class:`FNASConfig` (which parts are on)
  and :class:`DecisionConfig` (the veto rule's);
- :mod:`~fnas.strategies.fnas.screening`: :class:`ScreeningStrategy`, the critic screens
  candidates (:mod:`~fnas.strategies.fnas.candidates`) and an acquisition function picks what
  is trained; its settings and JSON state in :mod:`~fnas.strategies.fnas.screen_config`;
- :mod:`~fnas.strategies.fnas.veto`: :class:`FNASStrategy`, vanilla PPO (critic off) or the
  first design's veto rule (``acquisition='off'``), its JSON state in
  :mod:`~fnas.strategies.fnas.state`.

``STRATEGIES["fnas"]`` (:mod:`fnas.strategies.registry`) picks one of the two classes.
"""

from fnas.strategies.fnas.config import DecisionConfig, FNASConfig
from fnas.strategies.fnas.screen_config import ScreenConfig, ScreenState
from fnas.strategies.fnas.screening import ScreeningStrategy
from fnas.strategies.fnas.veto import FNASStrategy

__all__ = ["DecisionConfig", "FNASConfig", "ScreenConfig", "ScreenState", "ScreeningStrategy",
           "FNASStrategy"]
