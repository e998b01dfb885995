"""The offline proposer ``mutate``: one literal per node, chosen by a model of the tree.

Modules, one job each: ``_sites`` (finding tunable literals and ``# search:`` declarations),
``_introspect`` (what the script's callables document: defaults, bounds, choices), ``_domains``
(where values are valid and worth searching), ``_effect`` (literals that cannot move the metric),
``_knowledge`` (the tree's facts per site), ``_model`` (Optuna TPE), ``_moves`` (hill-climb steps),
``_proposer`` (the order of attempts and the plans).
"""

from __future__ import annotations

from ._moves import Move, site_moves
from ._proposer import MutateProposer
from ._sites import Site, Spec, check_declarations, find_sites

__all__ = ["MutateProposer", "Move", "Site", "Spec", "check_declarations", "find_sites", "site_moves"]
