"""``%%autoresearch --use a,b``: hand kernel variables to every node script.

Node scripts run in fresh processes, so a DataFrame loaded in the notebook does not exist there.
The magic serialises the named variables once per run with cloudpickle into the run folder
(``use.pkl``) and puts a short loader at the top of the frozen setup, so every node starts from
the same objects and no proposal can change how they are loaded.

Each variable is pickled on its own so that a failure names the variable; the file holds a dict
of name -> bytes, read back with the standard ``pickle`` module (cloudpickle output needs only
cloudpickle importable, which it is: nodes run with the kernel's interpreter).
"""

from __future__ import annotations

import keyword
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import AutoResearchError

USE_FILE = "use.pkl"
LOADER = "_autoresearch_use"
_FILE_HINT = 'file="")'  # pin_use_file() fills in the absolute path here

_PREAMBLE = '''\
def {loader}(*names, file=None):
    """Load the notebook variables that %%autoresearch --use handed to this script."""
    import os, pickle
    node_dir = os.environ.get("AUTORESEARCH_NODE_DIR", "")
    here = os.path.dirname(os.path.abspath(globals().get("__file__", "x")))
    places = [os.environ.get("AUTORESEARCH_USE_FILE", ""),
              node_dir and os.path.join(node_dir, "..", "..", "{use_file}"), file,
              os.path.join(here, "{use_file}"), os.path.join(here, "..", "{use_file}"),
              os.path.join(here, "..", "..", "{use_file}")]
    for path in places:
        if path and os.path.isfile(path):
            with open(path, "rb") as f:
                blobs = pickle.load(f)
            return [pickle.loads(blobs[name]) for name in names]
    raise FileNotFoundError("this script needs " + ", ".join(names) + " from the notebook "
                            "(%%autoresearch --use): set AUTORESEARCH_USE_FILE to its run's {use_file}")


'''


class UseError(AutoResearchError):
    """A ``--use`` variable that does not exist, has a bad name, or cannot be serialised."""


def parse_names(text: str | Sequence[str]) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (order kept, duplicates dropped); UseError on a bad name."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_autoresearch"):
            raise UseError(f"--use: {name!r} is not a variable name")
        if name not in names:
            names.append(name)
    return names


def serialise(namespace: Mapping[str, Any], names: Sequence[str]) -> dict[str, bytes]:
    """Each named variable pickled with cloudpickle; UseError names the first that fails."""
    missing = [n for n in names if n not in namespace]
    if missing:
        raise UseError(f"--use: no variable named {', '.join(map(repr, missing))} in the notebook")
    import cloudpickle

    blobs: dict[str, bytes] = {}
    for name in names:
        value = namespace[name]
        try:
            blobs[name] = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:  # noqa: BLE001 - pickling raises anything (TypeError, PicklingError, ...)
            detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            raise UseError(
                f"--use: variable {name!r} ({type(value).__name__}) cannot be serialised with "
                f"cloudpickle: {detail}"
            ) from None
    return blobs


def write_use_file(run_path: Path, blobs: Mapping[str, bytes]) -> Path:
    """Write ``use.pkl`` into the run folder (before the baseline runs); returns its path."""
    path = run_path / USE_FILE
    tmp = path.with_name(f".{USE_FILE}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(dict(blobs), f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return path


def preamble(names: Sequence[str]) -> str:
    """The loader code, frozen with the setup: defines the loader and assigns each name."""
    if not names:
        return ""
    call = f"{LOADER}({', '.join(repr(n) for n in names)}, {_FILE_HINT}"
    targets = ", ".join(names) + ("," if len(names) == 1 else "")
    head = f"# Notebook variables handed over with --use: {', '.join(names)}\n"
    return head + _PREAMBLE.format(loader=LOADER, use_file=USE_FILE) + f"{targets} = {call}\n"


def pin_use_file(script: str, use_file: Path) -> str:
    """An exported copy of a script that finds ``use_file`` wherever the copy is written.

    Only exported copies change; the node scripts and their frozen code stay as they ran.
    """
    if f"{LOADER}(" not in script:
        return script
    return script.replace(_FILE_HINT, f"file={str(use_file.resolve())!r})", 1)
