"""The core: what a run is made of, with no behaviour of its own.

Nodes and their states, the tree, the protocol fixed before the first node, the run settings
(``settings.RunSettings``: every option of a run, typed and checked once, from which the faces
generate their options), how a metric is read from a node's output, diffs, argument value types
and the one error hierarchy. Modules here import
only the standard library and each other, so every other layer can use them and node scripts can
import ``report`` without loading anything heavy.
"""
