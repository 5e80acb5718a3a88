"""D4PG-EWC: D4PG that consolidates each finished regime with the diagonal of its Fisher.

Elastic weight consolidation (Kirkpatrick et al., PNAS 2017) as the
loss-approximation view states it (Yin et al., arXiv 2006.10974): a finished
regime's loss is replaced by ``0.5 (w - w_k)^T diag(F_k) (w - w_k)``, with
``F_k`` the Fisher at the weights ``w_k`` the regime ended with. The switches
are known: the regime the env reports in ``info['regime']``
(``regime_spec``). Everything else, and every choice, is
``rwrl.agents.consolidation``'s; ``consolidation_weight=0`` is D4PG
fine-tuning with the same replay resets (the baseline).

Example::

    rwrl run --agent d4pg-ewc --env cartpole-swingup --steps 30000 \\
        --env-kwarg 'regime_spec={"regimes": [{"pole_length": 1.0}, {"pole_length": 2.0}], "episodes_per_regime": 10}'
"""

from __future__ import annotations

import dataclasses

from rwrl.agents import d4pg
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.consolidation import ConsolidatingD4PG, ConsolidationConfig


@dataclasses.dataclass(frozen=True)
class D4PGEWCConfig(d4pg.D4PGConfig, ConsolidationConfig):
    """D4PG's hyperparameters and the consolidation's (``ConsolidationConfig``)."""


class D4PGEWC(ConsolidatingD4PG):
    """D4PG with EWC's diagonal-Fisher penalties at the reported regime switches."""

    capabilities = Capabilities(continual=True, reported_regimes=True)
    config_class = D4PGEWCConfig
    form = "diagonal"
