"""The engine: the search loop and the rules it applies.

``search`` runs the ask/tell loop (propose, guard, run, judge, journal) and tells the world through
the events in ``callbacks``; ``policy`` picks what to expand next; ``guard`` rejects proposals that
move goalposts or repeat what was tried. The loop reads its settings typed (``core.settings.RunSettings``)
and builds the proposer and executor from them.
It imports ``core``, ``store``, ``proposers`` and ``executors`` (through their interfaces), never a
face (``cli``, ``notebook``, ``lab``) and never ``report``: writing reports is a subscriber's job.
"""
