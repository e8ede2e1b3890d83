"""Import an exported file with Blender's own importer and dump what Blender sees, for the export tests.

Usage: ``python blender_readback.py FILE OUT.npz FPS FRAME [FRAME...]`` (a fresh process with ``bpy``). Writes
bone names, action names, the animated frame range, the scene fps, mesh vertex counts, and at each FRAME the world
positions of the bone heads ``(J, 3)`` and of the skinned mesh's vertices ``(V, 3)``, in Blender's z-up frame.
Frames are the file's: 0 is its first (Blender's BVH importer puts it at scene frame 1).
"""

from __future__ import annotations

import sys

import bpy
import numpy as np


def main(path: str, out: str, fps: float, frames: list[int]) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    first = 0
    # glTF keys are times: the importer turns them into frames with the scene's rate, so set it first.
    scene.render.fps = int(round(fps))
    scene.render.fps_base = scene.render.fps / fps
    if path.endswith(".fbx"):
        bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0)  # keys at their file times
    elif path.endswith(".glb"):
        bpy.ops.import_scene.gltf(filepath=path)
    elif path.endswith(".bvh"):
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=True, update_scene_duration=True)
        first = 1  # Blender's BVH importer starts at frame 1 or later
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    # Skinned meshes only: the glTF importer adds a mesh to draw bones with.
    meshes = [o for o in scene.objects if o.type == "MESH" and any(m.type == "ARMATURE" for m in o.modifiers)]
    arm = arms[0]
    names = [b.name for b in arm.data.bones]
    action = arm.animation_data.action
    result = {
        "bone_names": np.array(names), "num_armatures": np.array(len(arms)),
        "actions": np.array([a.name for a in bpy.data.actions]),
        "frame_range": np.array(action.frame_range[:]) - first,
        "fps": np.array(scene.render.fps / scene.render.fps_base),
        "vertex_counts": np.array([len(m.data.vertices) for m in meshes], dtype=int),
    }
    heads, verts = [], []
    for f in frames:
        scene.frame_set(f + first)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        heads.append([list(arm.matrix_world @ arm.pose.bones[n].head) for n in names])
        if meshes:
            ev = meshes[0].evaluated_get(depsgraph)
            m = ev.to_mesh()
            co = np.empty(len(m.vertices) * 3)
            m.vertices.foreach_get("co", co)
            mw = np.array(ev.matrix_world)
            verts.append(co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3])
            ev.to_mesh_clear()
    result["heads"] = np.array(heads)
    if verts:
        result["vertices"] = np.array(verts)
    np.savez(out, **result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), [int(f) for f in sys.argv[4:]])
