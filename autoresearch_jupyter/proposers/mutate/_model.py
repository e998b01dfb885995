"""Model-based choice of the one change: Optuna's TPE fitted on everything the tree measured.

Every finished node is a trial: its value of every site is parsed from its code, its metric is
the trial's value (a failed node counts as the worst metric seen, so the model steers away from
what broke). For each candidate site, Optuna is asked for that ONE parameter with all the other
sites fixed at the parent's values (``PartialFixedSampler`` around a seeded ``TPESampler``); the
TPE acquisition of each answer (log l(x) - log g(x), the density ratio that TPE's expected
improvement grows with) ranks the sites, and the best (site, value) is the node's change.

``optuna`` is imported only here, on first use, so only the proposer's process pays for it.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from typing import Any, Sequence

from ._domains import Domain


@functools.lru_cache(maxsize=1)
def optuna_available() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    return optuna


def _scored_tpe(optuna: Any) -> type:
    class ScoredTPE(optuna.samplers.TPESampler):
        """TPE that remembers the best acquisition value of its last sample (to rank sites)."""

        last_score = -math.inf

        def _compute_acquisition_func(self, samples: Any, mpe_below: Any, mpe_above: Any) -> Any:
            values = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
            self.last_score = float(values.max()) if values.size else -math.inf
            return values

    return ScoredTPE


def distribution(domain: Domain) -> Any:
    d = _optuna().distributions
    if domain.kind == "cat":
        return d.CategoricalDistribution(list(domain.choices))
    if domain.kind == "int":
        return d.IntDistribution(int(domain.lo), int(domain.hi), log=domain.log)
    return d.FloatDistribution(float(domain.lo), float(domain.hi), log=domain.log)


def _contains(dist: Any, value: Any) -> bool:
    if value is None and not hasattr(dist, "choices"):
        return False
    try:
        if hasattr(dist, "choices"):
            return any(type(c) is type(value) and c == value for c in dist.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return dist._contains(dist.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


class Studies:
    """One in-memory study per search space, grown by the nodes not yet in it (adding 200 trials
    afresh at every proposal would cost more than the 30 ms a proposal may take). The study holds
    exactly the tree's finished nodes, so a fresh one (after a resume) asks the same way."""

    def __init__(self) -> None:
        self._key: Any = None
        self._study: Any = None
        self._added: set[int] = set()

    def get(self, domains: dict[str, Domain], observations: Sequence[tuple[int, dict[str, Any], float | None]],
            maximize: bool, tree: object) -> tuple[Any, dict[str, Any]]:
        optuna = _optuna()
        key = (id(tree), maximize, tuple(sorted(domains.items(), key=lambda kv: kv[0])))
        dists = {sid: distribution(d) for sid, d in domains.items()}
        good = [m for _, _, m in observations if m is not None and math.isfinite(m)]
        worst = (min(good) if maximize else max(good)) if good else 0.0
        if key != self._key:
            self._key, self._added = key, set()
            self._study = optuna.create_study(direction="maximize" if maximize else "minimize")
        trials = []
        for node_id, values, metric in observations:
            if node_id in self._added:
                continue
            self._added.add(node_id)
            params = {sid: values[sid] for sid in dists if sid in values and _contains(dists[sid], values[sid])}
            if not params:
                continue
            ok = metric is not None and math.isfinite(metric)
            # a failed node counts as the worst metric seen when it was added: the model avoids it
            trials.append(optuna.trial.create_trial(
                params=params, distributions={k: dists[k] for k in params},
                value=metric if ok else worst - abs(worst) * 0.1 if maximize else worst + abs(worst) * 0.1))
        if trials:
            self._study.add_trials(trials)
        return self._study, dists


def choose(
    *,
    studies: Studies,
    observations: Sequence[tuple[int, dict[str, Any], float | None]],
    parent: dict[str, Any],
    domains: dict[str, Domain],
    asks: dict[str, Domain],
    maximize: bool,
    seed: int,
    tree: object = None,
) -> list[tuple[str, Any, float]]:
    """(site, value, score) for each site of ``asks``, best score first.

    ``observations`` are (node id, site values, metric or None for a failed node); ``domains``
    the full space of each site (what the trials are recorded in); ``asks`` the space to sample
    each candidate from (narrower late in the search).
    """
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study, dists = studies.get(domains, observations, maximize, tree)
        scored = _scored_tpe(optuna)
        out: list[tuple[str, Any, float]] = []
        for i, (sid, domain) in enumerate(sorted(asks.items())):
            fixed = {k: parent[k] for k in asks if k != sid and k in parent and _contains(dists[k], parent[k])}
            tpe = scored(seed=(seed * 7919 + i) % 2**32, n_startup_trials=0, multivariate=False,
                         constant_liar=False, n_ei_candidates=24)
            study.sampler = optuna.samplers.PartialFixedSampler(fixed, tpe)
            trial = study.ask({sid: distribution(domain), **{k: dists[k] for k in fixed}})
            value = trial.params[sid]  # the trial stays RUNNING: TPE without constant liar ignores it
            out.append((sid, value, tpe.last_score))
    out.sort(key=lambda item: -item[2])
    return out
