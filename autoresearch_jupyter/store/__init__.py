"""The run record on disk: the append-only journal, its event format, and the runs folder.

Only the engine writes here; faces and reports read. Modules import ``core`` only.
"""
