"""The engine: the search loop and the rules it applies.

``search`` runs the ask/tell loop (propose, guard, run, judge, journal) and tells the world through
the events in ``callbacks``; ``judge`` turns a job result into a node's verdict (noise floor,
constraints, the evaluator's grade), ``jobs`` builds what a node runs, ``baseline`` and ``resuming``
check the start; ``policy`` picks what to expand next; ``guard`` and ``failures`` reject proposals
that move goalposts or repeat what failed; ``ablation`` checks the best's changes at the end;
``measures``, ``learn`` and ``infra`` hold the runner-measured metrics, earlier runs' lessons and
the machine's own failures. The loop reads its settings typed (``core.settings.RunSettings``).
It imports ``core``, ``store``, ``proposers``, ``executors`` and ``evaluation`` (through their
interfaces), never a face (``cli``, ``notebook``, ``lab``) and never ``report``: writing reports is
a subscriber's job.
"""
