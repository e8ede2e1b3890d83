"""FBX export through Blender's own FBX exporter (``bpy``, the ``fbx`` extra), in a child process.

The file holds the subject's mesh (its betas, rest pose) skinned to an armature with SMPL's joint names, and one
action with a key on every frame. It is y up (Blender's exporter converts from Blender's z up) and its lengths are
Blender's metres, which FBX readers scale to their own unit. Bones point from each joint to its (main) child.

Blender runs in a separate Python process so that a crash or a hang in it ends that process, not the CLI; the
output appears only when Blender finished. SMPL's pose correctives are not in the file (plain skins cannot carry
them): the mesh deforms by linear blend skinning only, the joints are exact.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np

from mocap.errors import MissingDependencyError, MocapError
from mocap.io.atomic import atomic_path
from mocap.io.rig import Rig, continuous_quaternions, local_rotations
from mocap.io.smpl_npz import SmplSequence

BLENDER_SCRIPT = Path(__file__).with_name("_fbx_blender.py")
INSTALL_HINT = "pip install 'mocap[fbx]' (bpy 5.0.1, Python 3.11), or `make venv`"


def bpy_available() -> bool:
    return importlib.util.find_spec("bpy") is not None


def write_fbx(path: str | os.PathLike, seq: SmplSequence, rig: Rig, name: str = "motion",
              progress: Callable[[int, int], None] | None = None, timeout: float | None = None) -> None:
    """Write ``seq`` on ``rig`` as a skinned, animated FBX, atomically. ``name`` names the action.

    Raises:
        MissingDependencyError: ``bpy`` is not installed.
        MocapError: Blender failed (the message carries the end of its output); nothing is written.
    """
    if not bpy_available():
        raise MissingDependencyError(f"FBX export needs Blender's Python module: {INSTALL_HINT}")
    quats = continuous_quaternions(local_rotations(seq), seq.num_frames)
    with tempfile.TemporaryDirectory(prefix="mocap-fbx-") as work:
        scene = Path(work) / "scene.npz"
        np.savez(scene, names=np.array(rig.names), parents=rig.parents, rest_joints=rig.rest_joints, tips=rig.tips,
                 vertices=rig.vertices, faces=rig.faces, weights=rig.weights, body_name=np.array(rig.body_name),
                 quats=quats, root_translation=seq.trans, fps=np.array(seq.fps), action_name=np.array(name))
        with atomic_path(path) as tmp:
            _run_blender(scene, tmp, progress, timeout)


def _run_blender(scene: Path, out: Path, progress, timeout: float | None) -> None:
    tail: deque[str] = deque(maxlen=15)
    cmd = [sys.executable, str(BLENDER_SCRIPT), str(scene), str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def read() -> None:
        # Blender's own chatter shares the pipe; our progress lines are tagged.
        for line in proc.stdout:
            if line.startswith("mocap-progress ") and progress:
                progress(*map(int, line.split()[1:3]))
            else:
                tail.append(line.rstrip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MocapError(f"Blender took longer than {timeout:g} s writing the FBX and was stopped; "
                         "nothing was written") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    if rc != 0 or out.stat().st_size == 0:
        raise MocapError(f"Blender failed writing the FBX (exit code {rc}); nothing was written. "
                         "Its last output:\n" + "\n".join(tail))
