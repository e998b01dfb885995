"""The core: what a run is made of, and the rules every layer applies to it, written once.

Nodes and their states, the tree, and their read-only snapshots (``NodeSnapshot``,
``TreeSnapshot``: what subscribers and the notebook hold while the loop changes the live ones);
the rules over them (kept, best, improvement over the baseline, token totals); the protocol fixed
before the first node; the run settings (``settings.RunSettings``: every option of a run, typed
and checked once, from which the faces generate their options; ``options``: the fields and checks
they are written in); how a metric is read from a
node's output; scripts' normal forms (``source``); which environment variables are credentials;
diffs, argument value types and the one error hierarchy. Modules here import only the standard
library and each other, so every other layer can use them and node scripts can import ``report``
without loading anything heavy.
"""
