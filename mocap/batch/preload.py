"""Imported once by the local pool's fork server, which then forks every worker from itself: each worker
starts with torch, the fit and the detector imported (about 2.5 s of CPU per worker otherwise, measured by
benchmarks/batch.py: 25 % of the CPU of a batch of 8 short takes on 2 workers).

Importing sets this process single-threaded first, so that numpy's BLAS and OpenMP read the settings when they
load; no thread is running when the server forks (a forked thread pool would be dead in the child).
"""

from mocap.batch.worker import single_threaded

single_threaded()

import mediapipe  # noqa: E402,F401
import mocap.detect.stage  # noqa: E402,F401
import mocap.fitting.run  # noqa: E402,F401
import mocap.io.export  # noqa: E402,F401
import mocap.io.smpl_npz  # noqa: E402,F401
