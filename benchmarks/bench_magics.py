"""Benchmark the notebook face: ``%load_ext autoresearch_jupyter`` (target <= 200 ms) and the
overhead a ``%%autoresearch`` cell adds on top of the search itself.

Every load is timed in a fresh process, as a user's first cell would be: IPython is already
imported there (the kernel imports it), so the figure is what the extension adds.

Run: ``python benchmarks/bench_magics.py [--repeat N]``; prints its figures (about 15 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_S = 0.200

LOAD = """
import json, sys, time
from IPython.testing.globalipapp import start_ipython
ip = start_ipython()
t0 = time.perf_counter()
ip.run_line_magic("load_ext", "autoresearch_jupyter")
t1 = time.perf_counter()
heavy = [m for m in ("autoresearch_jupyter.engine.search", "autoresearch_jupyter.executors", "ipywidgets",
                     "autoresearch_jupyter.notebook.widget", "cloudpickle", "nbformat") if m in sys.modules]
print(json.dumps({"load_s": t1 - t0, "heavy": heavy}))
"""

IMPORT = """
import json, sys, time
t0 = time.perf_counter()
import autoresearch_jupyter
print(json.dumps({"import_s": time.perf_counter() - t0, "ipython": "IPython" in sys.modules}))
"""

CELL = """
import json, os, time
from IPython.testing.globalipapp import start_ipython
ip = start_ipython()
ip.run_line_magic("load_ext", "autoresearch_jupyter")
magics = ip.magics_manager.registry["AutoResearch"]
magics.view = "none"
code = "x = 1.0  # search: float(0, 10)\\nprint(f'score: {-(x - 3) ** 2}')\\n"
t0 = time.perf_counter()
run = ip.run_cell_magic("autoresearch", "--metric score --maximize --steps 5 --proposer mutate", code)
total = time.perf_counter() - t0
node_time = sum(n.exec_time or 0 for n in run.nodes)
print(json.dumps({"cell_s": total, "nodes": len(run.nodes), "node_exec_s": node_time}))
"""


def fresh(code: str, cwd: str | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per figure (7)")
    args = parser.parse_args()

    fresh(LOAD)  # warm the file cache once
    loads = [fresh(LOAD) for _ in range(args.repeat)]
    load_times = [r["load_s"] for r in loads]
    median = statistics.median(load_times)
    verdict = "ok" if median <= TARGET_S else "OVER TARGET"
    print(f"%load_ext autoresearch_jupyter, fresh process x{args.repeat}: median {median * 1000:.1f} ms, "
          f"min {min(load_times) * 1000:.1f} ms, max {max(load_times) * 1000:.1f} ms "
          f"(target <= {TARGET_S * 1000:.0f} ms: {verdict})")
    heavy = sorted({m for r in loads for m in r["heavy"]})
    print(f"  heavy modules imported by loading: {heavy or 'none'}")

    imports = [fresh(IMPORT) for _ in range(args.repeat)]
    print(f"import autoresearch_jupyter: median {statistics.median(r['import_s'] for r in imports) * 1000:.1f} ms, "
          f"imports IPython: {any(r['ipython'] for r in imports)}")

    with tempfile.TemporaryDirectory() as tmp:
        cells = [fresh(CELL, cwd=tmp) for _ in range(3)]
    for r in cells:
        overhead = r["cell_s"] - r["node_exec_s"]
        print(f"%%autoresearch, 6 trivial nodes: cell {r['cell_s']:.2f} s, nodes ran {r['node_exec_s']:.2f} s, "
              f"everything else {overhead:.2f} s ({overhead / r['nodes'] * 1000:.0f} ms per node)")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(benchmark took {time.perf_counter() - started:.1f} s)")
