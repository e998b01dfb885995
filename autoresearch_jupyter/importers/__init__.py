"""Readers of other tools' records (AIDE's journal) into our run format, so our faces can show them.

Modules import ``core`` and ``store``.
"""
