"""D4PG-KFAC: D4PG that consolidates each finished regime with Kronecker-factored curvature.

The Kronecker-factored Laplace approximation (Ritter et al., NeurIPS 2018) as
the loss-approximation view states it (Yin et al., arXiv 2006.10974): a
finished regime's loss is replaced by its Taylor model with the Fisher
approximated per Dense layer by ``A (x) G`` (K-FAC's factors: the layer's
input and pre-activation-gradient second moments), which keeps the
correlations within a layer that EWC's diagonal drops; the LayerNorm
parameters keep their diagonal. The switches are known (``info['regime']``);
everything else is ``rwrl.agents.consolidation``'s.
"""

from __future__ import annotations

import dataclasses

from rwrl.agents import d4pg
from rwrl.agents.capabilities import Capabilities
from rwrl.agents.consolidation import ConsolidatingD4PG, ConsolidationConfig


@dataclasses.dataclass(frozen=True)
class D4PGKFACConfig(d4pg.D4PGConfig, ConsolidationConfig):
    """D4PG's hyperparameters and the consolidation's (``ConsolidationConfig``)."""


class D4PGKFAC(ConsolidatingD4PG):
    """D4PG with K-FAC penalties at the reported regime switches."""

    capabilities = Capabilities(continual=True, reported_regimes=True)
    config_class = D4PGKFACConfig
    form = "kfac"
