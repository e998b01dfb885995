"""The offline proposer: each node changes exactly one literal (or one left-out keyword).

The order of what it tries at a parent, each step taking the first usable change:

1. **Same way again.** The parent's own move was kept: the same site, the same step again
   (a pattern search; a kept x10 on ``C`` is followed by another x10).
2. **First tries** of sites the tree never varied, most promising first: a declared site, a
   literal far from its library default (tried *at* the default: libraries' defaults are good
   guesses), a default argument of an estimator or optimizer (``C=1.0`` of ``SVC``: a value near
   it), then other literals. Early in the search (broad first) these go before the model.
3. **The model** (``sampler="tpe"``, the default when Optuna is installed): TPE fitted on every
   node, asked for one parameter per candidate site with the others at the parent's values; the
   best expected improvement wins. Late in the search it asks in a narrower range around the
   parent's value (fine late).
4. **The hill climb** of fixed tiers (x10, /10; x2, /2; +-1; x1.5), seeded: the whole proposer
   when Optuna is missing (``sampler="hill"``), and the fallback when the model has nothing new.

Every value keeps its site's domain (declared spaces exactly; bounds from errors, documented
constraints and fraction names), never repeats a value that failed at another parent (timeouts
aside), never goes further in a direction that failed, and never touches literals that cannot
move the metric (plots, output, code after the metric: see ``_effect``). A failed move is
debugged by bisecting it, kept on the valid side of any bound its error stated.

Lessons of earlier runs (``learn``, see ``_lessons``): where the protocol matches, their
observations and failures are prior trials of the model (which then leads from the first
proposal), and the sites their kept changes moved are asked about first; whatever the protocol,
the values at which a site failed bound its domain.
"""

from __future__ import annotations

import ast
import math
import random
import sys
from typing import Any

from ...core.errors import ProposerError
from ...core.node import Node, Operator
from .._base import Context, Proposal, Proposer
from ._domains import Domain
from ._knowledge import IMPORTANT, Knowledge
from ._lessons import Priors, build
from ._model import Studies, choose, optuna_available
from ._moves import Move, bisect, fmt_float, fmt_value, site_moves
from ._sites import Site, _is_number

SAMPLERS = ("auto", "tpe", "hill")
PIP_HINT = "pip install 'autoresearch-jupyter[hpo]'"
DECLARED_TIER = 0.85  # hill climb: chance of moving a declared site when both kinds remain
ASK_SITES = 2  # sites the model is asked about per proposal
_WARNED: list[bool] = []


def _meta(node: Node) -> dict[str, Any] | None:
    meta = node.meta.get("mutate") if isinstance(node.meta, dict) else None
    return meta if isinstance(meta, dict) and "site" in meta else None


def _direction(label: str) -> str | None:
    return "up" if label[:1] in ("x", "+") else "down" if label[:1] in ("/", "-") else None


def _jsonable(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def _text(site: Site, value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return fmt_value(value, site.text or '"')
    if isinstance(value, int) and site.kind != "float":
        return str(value)
    return fmt_float(float(value), site.text or "0.0")


def _parse(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


class MutateProposer(Proposer):
    """Offline proposer: one literal per node, chosen by TPE over the tree (or a hill climb)."""

    name = "mutate"
    operators = frozenset({Operator.IMPROVE, Operator.DEBUG})

    def __init__(self, *, seed: int = 0, sampler: str = "auto", defaults: bool = True) -> None:
        if sampler not in SAMPLERS:
            raise ProposerError(f"Unknown mutate sampler {sampler!r}. Valid samplers: {', '.join(SAMPLERS)}.")
        if sampler == "tpe" and not optuna_available():
            raise ProposerError(f"the tpe sampler needs Optuna: {PIP_HINT}")
        self.sampler = sampler
        self.defaults = defaults
        self._lessons: list[dict[str, Any]] = []
        self._priors: tuple[str, Priors] | None = None
        self.reseed_rng(seed)

    def reseed_rng(self, seed: int) -> None:
        self._seed = seed
        self._studies = Studies()

    def learn(self, *, lessons: list[dict[str, Any]]) -> None:
        """Earlier runs' lessons: their observations become prior trials of the model (where the
        protocol matches), their kept changes rank the sites, their domains bound the values."""
        self._lessons = [dict(x) for x in lessons]
        self._priors = None

    def _knowledge(self, context: Context) -> tuple[Knowledge, Priors]:
        know = Knowledge(context.tree, context.protocol.metric, introspect=self.defaults)
        root = context.tree.root
        if not self._lessons or root is None:
            return know, Priors()
        if self._priors is None or self._priors[0] != root.code:
            self._priors = (root.code, build(self._lessons, know, root.code))
        priors = self._priors[1]
        know.prior_bounds = priors.bounds
        return know, priors

    @property
    def model(self) -> bool:
        if self.sampler == "hill":
            return False
        if self.sampler == "auto" and not optuna_available():
            if not _WARNED:
                _WARNED.append(True)
                print(f"autoresearch: mutate: Optuna is not installed, using the hill climb ({PIP_HINT} "
                      "for the model-based choice)", file=sys.stderr)
            return False
        return True

    def propose(self, *, context: Context) -> Proposal | None:
        """A one-literal change of ``context.parent``; None when nothing is left to try there."""
        if context.operator is Operator.DEBUG:
            return self._debug(context)
        if context.operator is not Operator.IMPROVE:
            return None
        return self._improve(context)

    def _usable(self, context: Context, code: str) -> bool:
        return not context.is_known(code) and context.protocol.frozen_violation(code) is None

    # ---- improve -----------------------------------------------------------------------

    def _improve(self, context: Context) -> Proposal | None:
        parent, tree = context.parent, context.tree
        know, priors = self._knowledge(context)
        sites = {s.id: know.as_float(s) for s in know.sites(parent.code) if not know.inert(parent.code, s)}
        if not sites:
            return None
        kids = tree.kids(parent.id)
        rng = random.Random(f"{self._seed}:{parent.id}:{len(kids)}")
        tried = {(m["site"], m.get("new")) for k in kids if (m := _meta(k))}
        failed = know.failed_moves()
        root_values = know.values(tree.root) if tree.root is not None else {}
        domains = {sid: d for sid, s in sites.items() if (d := know.domain(s, root_values.get(sid))) is not None}

        def change(site: Site, value: Any, label: str, why: str) -> Proposal | None:
            text = _text(site, value)
            same = type(value) is type(site.value) and value == site.value
            if same or text == site.text or (site.id, text) in tried or not self._valid(know, site, value, failed):
                return None
            code = site.apply(parent.code, text)
            if not self._usable(context, code):
                return None
            tried.add((site.id, text))
            return self._proposal(context, site, value, text, label, why)

        attempts = []
        if self.model:
            first = lambda: self._first_try(know, tree, sites, domains, change, rng, context.early)  # noqa: E731
            model = lambda: self._model(know, context, sites, domains, change, rng, priors)  # noqa: E731
            attempts = [lambda: self._momentum(context, sites, change)]
            informed = bool(priors.observations)  # earlier runs' trials: the model knows enough to lead
            attempts += [first, model] if context.early and not informed else [model, first]
        attempts.append(lambda: self._hill(context, sites, change, rng))
        for attempt in attempts:
            proposal = attempt()
            if proposal is not None:
                return proposal
        return None

    def _valid(self, know: Knowledge, site: Site, value: Any, failed: list[tuple[str, Any, Any]]) -> bool:
        """Inside the site's domain, not a value that failed elsewhere, not beyond a failed step."""
        if site.spec is not None and not site.spec.contains(value):
            return False
        if _is_number(value) and not know.bounds(site).ok(value):
            return False
        if _is_number(value) and isinstance(site.value, int) and site.kind != "float" and value < 1 <= site.value:
            return False
        for sid, old, new in failed:
            if sid != site.id:
                continue
            if new == value and type(new) is type(value):
                return False
            if _is_number(old) and _is_number(new) and _is_number(value) and _is_number(site.value) and new != old:
                if (new - old) * (value - new) >= 0 and (new - old) * (site.value - new) < 0:
                    return False  # as far or further the way that failed, from the same side
        return True

    def _momentum(self, context: Context, sites: dict[str, Site], change: Any) -> Proposal | None:
        meta = _meta(context.parent)
        if not context.parent.kept or meta is None or meta.get("site") not in sites:
            return None
        site = sites[meta["site"]]
        old, new = meta.get("old_value"), meta.get("new_value")
        if not (_is_number(old) and _is_number(new)) or old == new or not _is_number(site.value):
            return None
        assert isinstance(old, (int, float)) and isinstance(new, (int, float))
        if old > 0 and new > 0 and site.value > 0:
            ratio = new / old  # the same way, by a step between x1.5 and x10
            ratio = min(max(ratio, 1.5), 10.0) if ratio > 1 else max(min(ratio, 1 / 1.5), 0.1)
            value: Any = site.value * ratio
        else:
            value = site.value + (new - old)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return None
        if isinstance(site.value, int) and site.kind != "float":
            value = int(round(value))
        why = f"the same way again: {meta.get('old')} -> {meta.get('new')} improved node {context.parent.id}"
        return change(site, value, "again", why)

    def _first_try(self, know: Knowledge, tree: Any, sites: dict[str, Site], domains: dict[str, Domain],
                   change: Any, rng: random.Random, early: bool) -> Proposal | None:
        varied = self._varied(know, tree)
        fresh = [s for sid, s in sites.items() if sid not in varied]
        ranked = sorted(fresh, key=lambda s: (-self._priority(know, s), rng.random()))
        for site in ranked:
            if early and self.model and self._priority(know, site) < 2.0:
                break  # the rest waits for the model's verdict
            for value, label, why in self._first_values(know, site, domains.get(site.id), rng):
                proposal = change(site, value, label, why)
                if proposal is not None:
                    return proposal
        return None

    @staticmethod
    def _varied(know: Knowledge, tree: Any) -> set[str]:
        root = tree.root
        if root is None:
            return set()
        base = know.values(root)
        out: set[str] = set()
        for node in tree:
            if node.status.is_finished() and node.id != root.id and node.status.value != "rejected":
                for sid, value in know.values(node).items():
                    if sid not in base or base[sid] != value or type(base[sid]) is not type(value):
                        out.add(sid)
        return out

    @staticmethod
    def _default_of(know: Knowledge, site: Site) -> Any:
        info = know.info(site)
        return info.get("default") if info else None

    def _priority(self, know: Knowledge, site: Site) -> float:
        bonus = 1.0 if site.name in IMPORTANT else 0.0
        if site.declared:
            return 5.0 + bonus  # declared spaces stay king: first tried before any other site
        if site.at_default:
            return {"float": 1.5, "int": 1.2, "str": 1.0}.get(site.kind, 0.6) + bonus
        default = self._default_of(know, site)
        if _is_number(default) and _is_number(site.value) and default > 0 and site.value > 0:
            distance = abs(math.log10(site.value / default))
            if distance >= 0.5:
                return 3.0 + min(distance, 3) / 3 + bonus  # a weak literal: its default first
        return {"float": 2.0, "int": 1.8, "str": 2.0, "bool": 1.2}.get(site.kind, 1.5) + bonus

    def _first_values(self, know: Knowledge, site: Site, domain: Domain | None,
                      rng: random.Random) -> list[tuple[Any, str, str]]:
        v = site.value
        if site.at_default:
            why = f"default argument {site.name}={v!r} of {site.callee}, first try"
            if isinstance(v, bool):
                return [(not v, "flip", why)]
            if site.kind == "str" and domain is not None:
                return [(c, "choice", why) for c in rng.sample(list(domain.choices), len(domain.choices))]
            if isinstance(v, int) and site.kind != "float":
                return [(v * 2, "x2", why), (max(1, v // 2), "//2", why)][:: rng.choice((1, -1))]
            return [(v * 3, "x3", why), (v / 3, "/3", why)][:: rng.choice((1, -1))]
        out: list[tuple[Any, str, str]] = []
        default = self._default_of(know, site)
        if default is not None and not site.declared and type(default) in (type(v), int, float) and default != v:
            if _is_number(default) == _is_number(v) and (not isinstance(v, int) or site.kind == "float" or isinstance(default, int)):
                out.append((float(default) if site.kind == "float" else default, "default",
                            f"the default of {site.callee}, first try"))
        if domain is not None and domain.kind == "cat":
            others = [c for c in domain.choices if not (type(c) is type(v) and c == v)]
            out += [(c, "choice", "first try of a choice") for c in rng.sample(others, len(others))]
        else:
            moves = site_moves(site, early=True)
            out += [(m.value, m.label, f"{m.label}, first try (broad)") for m in rng.sample(moves, len(moves))]
        return out

    def _model(self, know: Knowledge, context: Context, sites: dict[str, Site], domains: dict[str, Domain],
               change: Any, rng: random.Random, priors: Priors = Priors()) -> Proposal | None:
        if not self.model or not domains:
            return None
        tree, parent = context.tree, context.parent
        observations = list(priors.observations)  # earlier runs' trials first (ids < 0)
        for node in tree:
            if node.status.is_finished() and node.status.value not in ("rejected", "cancelled"):
                observations.append((node.id, know.values(node), node.metric if node.is_good else None))
        effect = self._effects(tree)
        for sid, size in priors.effects.items():
            effect[sid] = max(effect.get(sid, 0.0), size)
        worth = [sid for sid in domains if effect.get(sid, 0.0) > 0 or self._priority(know, sites[sid]) >= 2.0]
        order = sorted(worth or domains, key=lambda sid: (-effect.get(sid, -1.0), -self._priority(know, sites[sid])))
        ask_ids = order[: ASK_SITES - 1]  # the most promising, and one other for exploration
        rest = order[ASK_SITES - 1 :]
        if rest:
            ask_ids.append(rest[rng.randrange(len(rest))])
        narrow = 1.0 + 9.0 * (1.0 - context.progress) ** 2  # broad early, fine late (x10 -> x1 span)
        parent_values = know.values(parent)
        asks = {}
        for sid in ask_ids:
            v = parent_values.get(sid)
            numeric = isinstance(v, (int, float)) and _is_number(v)
            asks[sid] = domains[sid].narrowed(float(v), max(3.0, narrow)) if numeric and context.progress >= 0.5 else domains[sid]  # type: ignore[arg-type]
        ranked = choose(studies=self._studies, observations=observations, parent=parent_values, domains=domains, asks=asks,
                        maximize=context.protocol.maximize, seed=rng.randrange(2**31), tree=tree)
        names = ", ".join(sites[sid].name for sid, _, _ in ranked)
        for sid, value, score in ranked:
            site = sites[sid]
            if domains[sid].kind == "int" and isinstance(value, float):
                value = int(round(value))
            why = f"TPE: highest expected improvement of {len(ranked)} sites asked ({names})"
            proposal = change(site, value, "tpe", why)
            if proposal is not None:
                return proposal
        return None

    @staticmethod
    def _effects(tree: Any) -> dict[str, float]:
        """Largest |metric change| each site's moves caused against their parent."""
        out: dict[str, float] = {}
        for node in tree:
            meta = _meta(node)
            if meta and node.is_good and node.parent is not None and tree[node.parent].is_good:
                delta = abs(node.metric - tree[node.parent].metric)
                out[meta["site"]] = max(out.get(meta["site"], 0.0), delta)
        return out

    def _hill(self, context: Context, sites: dict[str, Site], change: Any, rng: random.Random) -> Proposal | None:
        on_path = {m["site"] for n in context.tree.path(context.parent.id)[1:] if (m := _meta(n))}
        here = {m["site"] for k in context.tree.kids(context.parent.id) if (m := _meta(k))}
        meta = _meta(context.parent)  # a kept move: going on that way is tried first (pattern search)
        way = _direction(str(meta.get("move", ""))) if meta and context.parent.kept else None
        momentum = (meta["site"], way) if meta and way else None
        for early, finest in ((context.early, False), (not context.early, False), (False, True)):
            pool = {sid: site_moves(s, early=early, finest=finest) for sid, s in sites.items()}
            pool = {sid: moves for sid, moves in pool.items() if moves}
            while pool:
                declared = [sid for sid in pool if sites[sid].declared]
                plain = [sid for sid in pool if not sites[sid].declared]
                ids = (declared if rng.random() < DECLARED_TIER else plain) if declared and plain else declared or plain
                weights = [(9 if momentum and sid == momentum[0] else 3 if sid not in on_path else 1)
                           * (3 if sid not in here else 1) for sid in ids]
                sid = rng.choices(ids, weights=weights)[0]
                ahead = [i for i, m in enumerate(pool[sid]) if momentum == (sid, _direction(m.label))]
                move: Move = pool[sid].pop(ahead[0] if ahead else rng.randrange(len(pool[sid])))
                if not pool[sid]:
                    del pool[sid]
                why = "other choice" if move.scale == "choice" and move.label != "flip" else (
                    "flip" if move.label == "flip" else f"{move.label}, {move.scale} move {'early' if context.early else 'late'}")
                proposal = change(sites[sid], move.value, move.label, why)
                if proposal is not None:
                    return proposal
        return None

    def _proposal(self, context: Context, site: Site, value: Any, text: str, label: str, why: str) -> Proposal:
        if site.spec is not None:
            why += f", declared {site.spec.describe()}"
        old = site.text or f"{site.value!r} (default)"
        code = site.apply(context.parent.code, text)
        meta = {
            "site": site.id, "name": site.name, "move": label, "old": old, "new": text, "line": site.line,
            "declared": site.declared, "default": site.at_default, "base": context.parent.id,
            "phase": "early" if context.early else "late", "old_value": _jsonable(site.value),
            "new_value": _jsonable(value),
        }
        return Proposal(operator=Operator.IMPROVE, plan=f"{site.name}: {old} -> {text} ({why})", code=code,
                        meta={"mutate": meta})

    # ---- debug -------------------------------------------------------------------------

    def _debug(self, context: Context) -> Proposal | None:
        """Bisect a failed move: the good node's code, the site half-way back to the failed value,
        on the valid side of any bound the error stated."""
        failed, tree = context.parent, context.tree
        meta = _meta(failed)
        base_id = meta.get("base", failed.parent) if meta else None
        if meta is None or not isinstance(base_id, int) or base_id not in tree:
            return None
        base = tree[base_id]
        know, _ = self._knowledge(context)
        site = next((know.as_float(s) for s in know.sites(base.code) if s.id == meta["site"]), None)
        failed_value = _parse(str(meta.get("new")))
        mid = bisect(site, failed_value) if site is not None else None
        if site is None or mid is None:
            return None
        bounds = know.bounds(site)
        integer = isinstance(mid, int)
        if not bounds.ok(mid):
            mid = bounds.nearest(mid, integer)
            mid = int(mid) if integer else float(mid)
        text = _text(site, mid)
        if text in (site.text, str(meta.get("new"))) or (_is_number(failed_value) and not bounds.ok(failed_value)
                                                          and mid == failed_value):
            return None
        code = site.apply(base.code, text)
        done = {m.get("new") for k in tree.kids(failed.id) if (m := _meta(k))}
        if text in done or not self._usable(context, code):
            return None
        new_meta = {
            "site": site.id, "name": site.name, "move": "bisect", "old": site.text or f"{site.value!r} (default)",
            "new": text, "line": site.line, "declared": site.declared, "default": site.at_default,
            "base": base.id, "failed": str(meta.get("new")), "old_value": _jsonable(site.value),
            "new_value": _jsonable(mid),
        }
        inside = f", inside {bounds.describe()} ({bounds.why})" if bounds.why else ""
        plan = (f"{site.name}: {meta.get('new')} failed ({failed.status.value}); try {text}, half-way back "
                f"to {new_meta['old']} (bisect the failed move{inside})")
        return Proposal(operator=Operator.DEBUG, plan=plan, code=code, meta={"mutate": new_meta})
