"""Run by :func:`mocap.io.fbx.write_fbx` in a child Python process that has ``bpy``: build the scene, write the FBX.

Usage: ``python _fbx_blender.py SCENE.npz OUT.fbx``. SCENE.npz holds the rig and the motion in SMPL's y-up frame
(see ``write_fbx``). Blender is z-up: everything is turned by +90 degrees about x on the way in, and Blender's FBX
exporter turns it back (``axis_up="Y"``), so the file is y-up like the input. Prints ``mocap-progress DONE TOTAL``
lines for the parent.
"""

from __future__ import annotations

import sys

import bpy
import numpy as np
from bpy_extras import anim_utils
from scipy.spatial.transform import Rotation

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_LINEAR = 1  # FCurve keyframe interpolation enum value
STEPS = 4


def report(done: int) -> None:
    print(f"mocap-progress {done} {STEPS}", flush=True)


def build_armature(d, scene) -> bpy.types.Object:
    names = [str(n) for n in d["names"]]
    arm = bpy.data.objects.new("SMPL", bpy.data.armatures.new("SMPL"))
    scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    heads, tails = d["rest_joints"] @ Y_UP_TO_Z_UP.T, d["tips"] @ Y_UP_TO_Z_UP.T
    bones = []
    for j, name in enumerate(names):
        eb = arm.data.edit_bones.new(name)
        eb.head, eb.tail, eb.roll = heads[j].tolist(), tails[j].tolist(), 0.0
        if d["parents"][j] >= 0:
            eb.parent = bones[d["parents"][j]]
        bones.append(eb)
    bpy.ops.object.mode_set(mode="OBJECT")
    return arm


def build_mesh(d, scene, arm) -> None:
    names = [str(n) for n in d["names"]]
    mesh = bpy.data.meshes.new(str(d["body_name"]))
    mesh.from_pydata((d["vertices"] @ Y_UP_TO_Z_UP.T).tolist(), [], d["faces"].tolist())
    mesh.shade_smooth()
    obj = bpy.data.objects.new(str(d["body_name"]), mesh)
    scene.collection.objects.link(obj)
    weights = d["weights"]
    for j, name in enumerate(names):
        group = obj.vertex_groups.new(name=name)
        for v in np.flatnonzero(weights[:, j] > 0).tolist():
            group.add([v], float(weights[v, j]), "REPLACE")
    obj.parent = arm
    obj.modifiers.new("Armature", "ARMATURE").object = arm


def animate(d, scene, arm) -> None:
    names = [str(n) for n in d["names"]]
    quats = d["quats"]  # (F, J, 4) xyzw, SMPL local rotations in SMPL's frame
    F, J = quats.shape[:2]
    # A pose bone's rotation is expressed in its rest frame B (armature space): Q = B^T (C R C^T) B.
    C = Rotation.from_matrix(Y_UP_TO_Z_UP)
    B = Rotation.from_matrix(np.stack([np.array(arm.data.bones[n].matrix_local.to_3x3()) for n in names]))
    Q = np.empty_like(quats)
    for j in range(J):
        Q[:, j] = (B[j].inv() * C * Rotation.from_quat(quats[:, j]) * C.inv() * B[j]).as_quat()
    Q = Q[..., [3, 0, 1, 2]]  # Blender's order: w, x, y, z
    # Same sign as the previous frame, so that Blender never blends the long way round.
    flips = np.cumsum(np.einsum("fjc,fjc->fj", Q[1:], Q[:-1]) < 0, axis=0) % 2
    Q[1:] *= np.where(flips == 1, -1.0, 1.0)[..., None]
    root = int(np.flatnonzero(d["parents"] < 0)[0])
    location = (B[root].inv() * C).apply(d["root_translation"])  # (F, 3) in the root bone's rest frame

    action = bpy.data.actions.new(str(d["action_name"]))
    arm.animation_data_create()
    arm.animation_data.action = action
    slot = arm.animation_data.action_slot or action.slots.new(id_type="OBJECT", name=arm.name)
    arm.animation_data.action_slot = slot
    fcurves = anim_utils.action_ensure_channelbag_for_slot(action, slot).fcurves
    frames = np.arange(F, dtype=np.float64)
    curves = [(f'pose.bones["{names[j]}"].rotation_quaternion', k, Q[:, j, k], names[j]) for j in range(J) for k in range(4)]
    curves += [(f'pose.bones["{names[root]}"].location', k, location[:, k], names[root]) for k in range(3)]
    for path, index, values, group in curves:
        fc = fcurves.new(path, index=index, group_name=group)
        fc.keyframe_points.add(F)
        fc.keyframe_points.foreach_set("co", np.stack([frames, values], 1).ravel())
        fc.keyframe_points.foreach_set("interpolation", [_LINEAR] * F)
        fc.update()
    for pb in arm.pose.bones:
        pb.rotation_mode = "QUATERNION"


def main(scene_file: str, out: str) -> None:
    d = dict(np.load(scene_file, allow_pickle=False))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.name = str(d["action_name"])  # the exporter names the FBX take after the scene
    fps = float(d["fps"])
    scene.render.fps = max(int(round(fps)), 1)
    scene.render.fps_base = scene.render.fps / fps  # exact for rates such as 29.97
    scene.frame_start, scene.frame_end = 0, len(d["quats"]) - 1
    arm = build_armature(d, scene)
    build_mesh(d, scene, arm)
    report(1)
    animate(d, scene, arm)
    report(2)
    # The exporter bakes the animation by evaluating every frame; a muted Armature modifier spares it deforming
    # the mesh each time. The skin is still written: the exporter reads the modifier's settings, not its output.
    for obj in scene.objects:
        for mod in obj.modifiers:
            mod.show_viewport = False
    bpy.ops.export_scene.fbx(
        filepath=out, use_selection=False, object_types={"ARMATURE", "MESH"}, add_leaf_bones=False,
        axis_forward="-Z", axis_up="Y", bake_anim=True, bake_anim_use_all_bones=True,
        bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True,
        bake_anim_step=1.0, bake_anim_simplify_factor=0.0, use_armature_deform_only=False)
    report(STEPS)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
