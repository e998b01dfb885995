"""The notebook face: magics, their commands, the run handle, the tree-view widget and its assets.

``magics`` registers ``%%autoresearch`` and friends, with its run options and ``%config
AutoResearch.*`` traits generated from ``core.settings.RunSettings`` by ``config``; ``commands`` implements the
``%autoresearch`` subcommands; ``run`` is the handle a notebook holds on a search; ``code`` and
``usevars`` turn cells and kernel variables into node scripts; ``widget`` is the anywidget tree
view; ``lineage`` writes the lineage notebook. The only place that imports IPython and
ipywidgets. It uses the engine's public API, ``store`` and ``report``; nothing imports it.
"""
