"""What the script's callables say about their arguments: defaults, bounds and closed choices.

The baseline's imports tell which module each called name comes from (``from sklearn.svm import
SVC`` makes ``SVC(...)`` mean ``sklearn.svm:SVC``). One short subprocess (``python -I``, one thread
per BLAS) imports those modules and reads each class's signature, its ``Literal[...]``
annotations and, for scikit-learn, ``_parameter_constraints`` (``Interval``, ``StrOptions``). It
runs once per baseline (about the cost of importing the script's libraries, 1-2 s for
scikit-learn) and only for the *baseline's* imports: proposed code never decides what is imported
outside the sandbox. Only classes that are estimators (a ``fit`` method) or optimizers (``step``
and ``zero_grad``) are described: their arguments are hyperparameters; layers and data helpers are
left alone. A failing import or a timeout describes nothing, and the search goes on without sites
at defaults.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from typing import Any

_PROBE = r'''
import importlib, inspect, json, math, sys, typing, warnings
warnings.simplefilter("ignore")
out = {}
for target in json.loads(sys.argv[1]):
    mod, _, attrs = target.partition(":")
    try:
        obj = importlib.import_module(mod)
        for a in attrs.split("."):
            obj = getattr(obj, a)
        if not inspect.isclass(obj):
            continue
        estimator = callable(getattr(obj, "fit", None))
        optimizer = callable(getattr(obj, "step", None)) and callable(getattr(obj, "zero_grad", None))
        if not (estimator or optimizer):
            continue
        sig = inspect.signature(obj)
    except Exception:
        continue
    cons = getattr(obj, "_parameter_constraints", None) or {}
    params = {}
    for p in sig.parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.default is p.empty:
            continue
        d = p.default
        if not (d is None or isinstance(d, (bool, int, float, str))) or (isinstance(d, float) and not math.isfinite(d)):
            continue
        entry = {"default": d, "choices": [], "intervals": [], "bool": False}
        ann = p.annotation
        if typing.get_origin(ann) is typing.Literal:
            entry["choices"] = [c for c in typing.get_args(ann) if isinstance(c, str)]
        for c in cons.get(p.name, []) if isinstance(cons, dict) else []:
            kind = type(c).__name__
            if kind == "StrOptions":
                entry["choices"] += sorted(str(o) for o in c.options if o not in getattr(c, "deprecated", ()))
            elif kind == "Interval":
                t = getattr(c.type, "__name__", str(c.type))
                entry["intervals"].append([t, c.left, c.right, c.closed])
            elif c == "boolean" or c is bool:
                entry["bool"] = True
        params[p.name] = entry
    out[target] = {"params": params, "sklearn": bool(cons), "optimizer": optimizer}
print(json.dumps(out))
'''


def import_map(code: str) -> dict[str, str]:
    """Local name -> ``module:attr.path`` for the script's top-level imports."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return {}
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name + ":"
                else:
                    top = alias.name.split(".")[0]
                    out[top] = top + ":"
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    return out


def resolve(callee: str, imports: dict[str, str]) -> str | None:
    """``svm.SVC`` with ``import sklearn.svm as svm`` -> ``sklearn.svm:SVC``; None if not imported."""
    head, _, rest = callee.partition(".")
    base = imports.get(head)
    if base is None or "(" in callee or "?" in callee:
        return None
    module, _, attrs = base.partition(":")
    path = ".".join(p for p in (attrs, rest) if p)
    if not path or module.split(".")[0] in sys.stdlib_module_names or module.startswith("autoresearch_jupyter"):
        return None
    return f"{module}:{path}"


@functools.lru_cache(maxsize=32)
def describe(targets: tuple[str, ...], timeout: float = 30.0) -> dict[str, Any]:
    """``{target: {"params": {name: {default, choices, intervals, bool}}, "sklearn": bool}}``."""
    if not targets:
        return {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "AUTORESEARCH"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _PROBE, json.dumps(sorted(targets))],
            capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
        )
        data = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else {}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {}
    return data if isinstance(data, dict) else {}
