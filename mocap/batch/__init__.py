"""`mocap batch`: the single commands' stages over many sessions, on a local process pool or a Ray cluster.

- :mod:`mocap.batch.sessions`: which folders are sessions, which steps to run.
- :mod:`mocap.batch.steps`: one function per step calling the same stage function as its single command, and
  the freshness test that lets a re-run skip what is done.
- :mod:`mocap.batch.worker`: one session's steps in order, failures caught and recorded (what a worker runs).
- :mod:`mocap.batch.pool` and :mod:`mocap.batch.cluster`: where the sessions run (local processes, Ray tasks).
- :mod:`mocap.batch.summary`: the per-session records, ``batch_summary.csv`` and ``.json``.
- :mod:`mocap.batch.runner`: ``run_batch``, all of the above as one call (what the CLI calls).

Nothing here imports the terminal UI: progress goes through an ``on_event`` callback.
"""
