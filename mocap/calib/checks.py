"""Is a calibration fit for the footage it is used with? Checked where footage meets the calibration
(`mocap detect`, `mocap run`, `mocap info`, `mocap calibrate import`, the report), never fitted through.

- Image size. A camera's intrinsics hold only for the image size it was calibrated at. Footage a few pixels
  off (codecs pad or crop frames to multiples of 16: the Pose2Sim sample is calibrated 1088 px wide, its
  videos are 1080) is used as it is, with a warning that the principal point is unverified. Footage scaled
  uniformly (same aspect ratio, e.g. 1080x1920 re-encoded to 540x960) gets the intrinsics scaled with a
  warning. Anything else is refused: no fit can be right through it (the re-encoded cam04 of the sample
  reprojected at 467 px and dragged cam02 from 19 to 81 px).
- Up axis. mocap's world is y up. The cameras' mean up direction (each camera's image up, -y of its frame,
  in the world) is the world's up for any rig that films a person standing; a calibration whose mean up is
  not closest to +y (a z-up lab world used as if y up) is refused by `run` and flagged by `info`.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from mocap.cameras import Camera, CameraRig
from mocap.errors import CalibrationError

#: Pixels by which footage may differ from the calibrated size and still be used as it is (codec padding).
PADDING_PX = 16
#: Relative difference of the two scale factors (width, height) below which footage counts as uniformly scaled.
ASPECT_TOLERANCE = 0.01
AXES = ("+x", "+y", "+z", "-x", "-y", "-z")


def scaled_camera(cam: Camera, size: tuple[int, int]) -> Camera:
    """``cam`` for footage scaled to ``size`` (width, height): fx, cx by the width's factor, fy, cy by the height's.

    Pixel (0, 0) is the centre of the top-left pixel, so a centre maps as ``c' = s (c + 0.5) - 0.5``.
    """
    sx, sy = size[0] / cam.image_size[0], size[1] / cam.image_size[1]
    K = cam.K.copy()
    K[0, 0] *= sx
    K[1, 1] *= sy
    K[0, 2] = sx * (K[0, 2] + 0.5) - 0.5
    K[1, 2] = sy * (K[1, 2] + 0.5) - 0.5
    return Camera(cam.name, K, cam.dist, cam.R, cam.t, (int(size[0]), int(size[1])))


def size_verdict(calibrated: tuple[int, int], actual: tuple[int, int]) -> str:
    """``same``, ``padded`` (a few pixels off), ``scaled`` (same aspect ratio) or ``mismatch``."""
    (W, H), (w, h) = calibrated, actual
    if (W, H) == (w, h):
        return "same"
    if abs(W - w) <= PADDING_PX and abs(H - h) <= PADDING_PX:
        return "padded"
    sx, sy = w / W, h / H
    return "scaled" if abs(sx - sy) <= ASPECT_TOLERANCE * max(sx, sy) else "mismatch"


def conform_rig(rig: CameraRig, sizes: Mapping[str, tuple[int, int]], calibration: str | os.PathLike,
                source: str = "footage") -> tuple[CameraRig, list[str]]:
    """The rig made to match the image ``sizes`` (camera -> width, height; sizes of 0 are unknown and skipped).

    Returns the rig (intrinsics of uniformly scaled views rescaled) and one warning per camera that differs;
    raises CalibrationError naming ``calibration`` when a view's aspect ratio differs from its calibration.
    """
    cams, warnings = [], []
    for cam in rig:
        size = tuple(int(v) for v in sizes.get(cam.name, (0, 0)))
        verdict = "same" if min(size) <= 0 else size_verdict(cam.image_size, size)
        (W, H), (w, h) = cam.image_size, size if min(size) > 0 else cam.image_size
        if verdict == "mismatch":
            raise CalibrationError(
                f"{calibration}: camera {cam.name} is calibrated for {W}x{H} but its {source} is {w}x{h}, another "
                "aspect ratio (cropped?); recalibrate that camera or give its original footage")
        if verdict == "scaled":
            warnings.append(f"{calibration}: {cam.name} calibrated for {W}x{H}, {source} is {w}x{h}; intrinsics scaled by "
                            f"{w / W:.3g} to match")
            cam = scaled_camera(cam, size)
        elif verdict == "padded":
            warnings.append(f"{calibration}: {cam.name} calibrated for {W}x{H} but {source} is {w}x{h}; check how the video was "
                            "cropped or padded before trusting the principal point")
        cams.append(cam)
    return CameraRig(tuple(cams)), warnings


def mean_up(rig: CameraRig) -> np.ndarray:
    """(3,) unit vector: the mean over cameras of each image's up direction in the world."""
    up = -rig.R[:, 1, :].mean(axis=0)
    return up / max(np.linalg.norm(up), 1e-12)


def up_axis(rig: CameraRig) -> str:
    """The world axis (``+y``, ``+z``, ``-y``...) closest to the cameras' mean up direction."""
    up = mean_up(rig)
    i = int(np.argmax(np.abs(up)))
    return ("+" if up[i] > 0 else "-") + "xyz"[i]


def up_problem(rig: CameraRig, calibration: str | os.PathLike) -> str | None:
    """A message when the calibration's world is not y up, else None."""
    axis = up_axis(rig)
    if axis == "+y":
        return None
    hint = ("it is a z-up world: import the original file again with `mocap calibrate import FILE --from FORMAT --up z`"
            if axis == "+z" else "recalibrate or convert it to a y-up world")
    up = ", ".join(f"{v:+.2f}" for v in mean_up(rig))
    return f"{calibration}: the cameras' mean up direction is ({up}), world {axis}, but mocap's world is y up; {hint}"


def check_up(rig: CameraRig, calibration: str | os.PathLike) -> None:
    """Refuse a calibration whose world is not y up (see `up_problem`)."""
    problem = up_problem(rig, calibration)
    if problem is not None:
        raise CalibrationError(problem)
