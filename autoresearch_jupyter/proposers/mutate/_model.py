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


def choose(
    *,
    observations: Sequence[tuple[dict[str, Any], float | None]],
    parent: dict[str, Any],
    domains: dict[str, Domain],
    asks: dict[str, Domain],
    maximize: bool,
    seed: int,
) -> list[tuple[str, Any, float]]:
    """(site, value, score) for each site of ``asks``, best score first.

    ``observations`` are (site values, metric or None for a failed node); ``domains`` the full
    space of each site (what the trials are recorded in); ``asks`` the space to sample each
    candidate from (narrower late in the search).
    """
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dists = {sid: distribution(d) for sid, d in domains.items()}
        good = [m for _, m in observations if m is not None and math.isfinite(m)]
        worst = (min(good) if maximize else max(good)) if good else 0.0
        spread = (max(good) - min(good)) if len(good) > 1 else abs(worst) or 1.0
        worst = worst - 0.1 * spread if maximize else worst + 0.1 * spread
        trials = []
        for values, metric in observations:
            params = {sid: values[sid] for sid in dists if sid in values and _contains(dists[sid], values[sid])}
            if not params:
                continue
            value = metric if metric is not None and math.isfinite(metric) else worst
            trials.append(optuna.trial.create_trial(
                params=params, distributions={k: dists[k] for k in params}, value=value))
        study = optuna.create_study(direction="maximize" if maximize else "minimize")
        study.add_trials(trials)
        scored = _scored_tpe(optuna)
        out: list[tuple[str, Any, float]] = []
        for i, (sid, domain) in enumerate(sorted(asks.items())):
            fixed = {k: parent[k] for k in dists if k != sid and k in parent and _contains(dists[k], parent[k])}
            tpe = scored(seed=(seed * 7919 + i) % 2**32, n_startup_trials=0, multivariate=False,
                         constant_liar=False, n_ei_candidates=24)
            study.sampler = optuna.samplers.PartialFixedSampler(fixed, tpe)
            ask = distribution(domain)
            trial = study.ask({sid: ask, **{k: dists[k] for k in fixed}})
            value = trial.params[sid]
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            out.append((sid, value, tpe.last_score))
    out.sort(key=lambda item: -item[2])
    return out
