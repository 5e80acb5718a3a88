"""Run storage, one floor above the engine: what a run writes and how it survives a kill.

* ``atomic_files``: atomic writes (readers see the old or the new file), checksums.
* ``checkpoint``: pytree checkpoints in a safe format (npz + JSON manifest), verified on load.
* ``run_lock``: one process per run directory (an OS file lock).
* ``progress_reporter``: progress of long jobs, a bar on a terminal and plain lines in a log.

Only ``checkpoint`` imports JAX (to flatten pytrees), and only when imported itself.
"""
