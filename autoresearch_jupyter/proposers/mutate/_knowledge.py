"""What the tree says about each site: its values in every node, its domain, what failed.

Built fresh from the tree at each proposal (parsing is cached per script), so proposals depend on
the tree and the seed only and survive a resume without hidden state.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ...core.node import Node, Status
from ...core.tree import Tree
from . import _introspect
from ._domains import NONE, Bounds, Domain, by_name, documented, floaty, learn, search_domain
from ._effect import is_inert
from ._sites import NO_EFFECT_NAMES, PROTOCOL_NAMES, Site, number, scan
from ...core.source import is_seed_name

IMPORTANT = frozenset(
    "C alpha gamma lr eta learning_rate learning_rate_init n_estimators max_depth num_leaves "
    "min_samples_leaf min_child_weight subsample colsample_bytree l1_ratio "
    "n_neighbors weight_decay hidden_layer_sizes reg_alpha reg_lambda max_leaf_nodes".split()
)


def _usable_default(name: str, entry: dict[str, Any], sklearn: bool) -> tuple[Any, tuple[Any, ...]] | None:
    """(default value, choices) of a left-out keyword worth tuning, or None."""
    low = name.lower()
    if is_seed_name(name) or low in PROTOCOL_NAMES or low in NO_EFFECT_NAMES:
        return None
    default, choices = entry.get("default"), tuple(c for c in entry.get("choices", []) if c != "precomputed")
    if isinstance(default, bool):
        return (default, (False, True)) if sklearn and entry.get("bool") else None
    if isinstance(default, str):
        return (default, choices) if default in choices and len(choices) >= 2 else None
    if isinstance(default, (int, float)) and math.isfinite(default) and default > 0:
        return default, ()
    return None


def all_sites(code: str, by_callee: dict[str, str], infos: dict[str, Any]) -> tuple[Site, ...]:
    """Explicit sites, string sites with documented choices and sites at defaults, numbered together."""
    parsed = scan(code, strings=True)
    sites: list[Site] = []
    for site in parsed.sites:
        if site.kind == "str":
            info = infos.get(by_callee.get(site.callee, ""), {}).get("params", {}).get(site.name)
            choices = tuple(c for c in (info or {}).get("choices", []) if c != "precomputed")
            if site.value not in choices or len(choices) < 2:
                continue
        sites.append(site)
    for end, scope, callee, prefix, given in parsed.calls:
        target = by_callee.get(callee)
        described = infos.get(target or "")
        if not described:
            continue
        line = code.count("\n", 0, end) + 1
        for name, entry in described["params"].items():
            usable = None if name in given else _usable_default(name, entry, described.get("sklearn", False))
            if usable is None:
                continue
            value = usable[0]
            kind = "bool" if isinstance(value, bool) else type(value).__name__
            sites.append(Site(f"{scope}/{callee}().{name}", name, value, "", line, end, end, kind,
                              callee=callee, at_default=True, prefix=prefix))
    return tuple(number(sorted(sites, key=lambda s: (s.start, s.at_default))))


_VALUES: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
_CACHE: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Site, ...]] = {}


@dataclasses.dataclass
class Knowledge:
    """The tree's facts, for one proposal."""

    tree: Tree
    metric: str
    introspect: bool = True
    prior_bounds: dict[str, Bounds] = dataclasses.field(default_factory=dict)  # by site id: earlier runs' domains

    def __post_init__(self) -> None:
        root = self.tree.root
        root_code = root.code if root is not None else ""
        imports = _introspect.import_map(root_code)
        parsed = scan(root_code)
        callees = {s.callee for s in parsed.sites if s.callee} | {c[2] for c in parsed.calls}
        key = {c: t for c in callees if (t := _introspect.resolve(c, imports))}
        self.infos = _introspect.describe(tuple(sorted(set(key.values())))) if self.introspect and key else {}
        self._key = tuple(sorted(key.items()))
        self.learned = self._learn()

    def sites(self, code: str) -> tuple[Site, ...]:
        key = (code, self._key)
        sites = _CACHE.get(key)
        if sites is None:
            if len(_CACHE) > 4096:
                _CACHE.clear()
            sites = _CACHE[key] = all_sites(code, dict(self._key), self.infos)
        return sites

    def info(self, site: Site) -> dict[str, Any] | None:
        target = dict(self._key).get(site.callee)
        return self.infos.get(target or "", {}).get("params", {}).get(site.name) if target else None

    def values(self, node: Node) -> dict[str, Any]:
        return self.values_of(node.code)

    def values_of(self, code: str) -> dict[str, Any]:
        """Every site's value in ``code`` (a node's, or an earlier run's script re-expressed)."""
        key = (code, self._key)
        values = _VALUES.get(key)
        if values is None:
            if len(_VALUES) > 4096:
                _VALUES.clear()
            values = _VALUES[key] = {s.id: s.value for s in self.sites(code)}
        return values

    def _learn(self) -> dict[str, Bounds]:
        """Bounds stated by the errors of failed nodes, by parameter name."""
        out: dict[str, Bounds] = {}
        for node in self.tree:
            if node.status is not Status.BUGGY:
                continue
            meta = node.meta.get("mutate") if isinstance(node.meta, dict) else None
            names = {str(meta["name"])} if isinstance(meta, dict) and meta.get("name") else set()
            ints = {}
            if isinstance(meta, dict) and meta.get("name"):
                ints[meta["name"]] = str(meta.get("new", "")).lstrip("-").isdigit()
            for name, b in learn(f"{node.reason or ''}\n{node.output_tail[-4000:]}", names, ints).items():
                out[name] = out[name].meet(b) if name in out else b
        return out

    def bounds(self, site: Site) -> Bounds:
        b = self.learned.get(site.name, NONE).meet(documented(self.info(site), site.value)).meet(by_name(site))
        return b.meet(self.prior_bounds[site.id]) if site.id in self.prior_bounds else b

    def as_float(self, site: Site) -> Site:
        """An int literal that is a float in practice becomes a float site (``"eta": 1`` -> 0.3)."""
        if floaty(site, self.info(site)):
            return dataclasses.replace(site, value=float(site.value), kind="float")
        return site

    def domain(self, site: Site, root_value: Any) -> Domain | None:
        info = self.info(site) or {}
        choices: tuple[Any, ...] = ()
        if site.kind == "str":
            choices = tuple(c for c in info.get("choices", []) if c != "precomputed")
        ref = root_value if type(root_value) is type(site.value) else site.value
        return search_domain(site, ref, info.get("default"), self.bounds(site), choices)

    def inert(self, code: str, site: Site) -> bool:
        return not site.declared and not site.at_default and is_inert(code, self.metric, site)

    def failed_moves(self) -> list[tuple[str, Any, Any]]:
        """(site, old value, new value) of mutate moves that failed (timeouts aside: a slower
        idea may still be valid)."""
        out = []
        for node in self.tree:
            meta = node.meta.get("mutate") if isinstance(node.meta, dict) else None
            if node.status is Status.BUGGY and isinstance(meta, dict) and "site" in meta:
                out.append((meta["site"], meta.get("old_value"), meta.get("new_value")))
        return out
