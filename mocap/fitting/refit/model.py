"""The ReFit network (Wang & Daniilidis, ICCV 2023, sections 3.1-3.4) in the released configuration.

One forward pass: an HRNet backbone turns each 256x256 crop into a 64x64 feature map and a global feature;
the global feature gives the initial estimate; a correlation head turns the feature map into one channel
per surface marker (67); then, for ``iters`` steps, the current body's markers are reprojected into the
crop, a 7x7 window around each is read from its channel, and 24 joint GRUs plus a shape and a camera GRU
update the estimate. State-dict names, shapes and order equal the released ``checkpoint_best.pth.tar``.

Shapes: ``N`` crops; ``M = 67`` markers; estimates are ``pose6d (N, 144)`` (24 rotations in the 6D layout
of :func:`mocap.rotations.rot6d_to_matrix`, camera frame), ``betas (N, 10)``, ``cam (N, 3)`` (see
:mod:`.crop`). ``merge`` hooks the multi-view averaging (section 3.5) in after every estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mocap.rotations import rot6d_to_matrix

from .crop import CropGeometry
from .hrnet import HRNET_WIDTHS, HRNet
from .layers import MultiLinear, Regressor, UpdateBlock
from .smpl_head import MARKER_VERTEX_IDS, RefitSMPL

__all__ = ["Refit", "RefitOutput", "Merge", "Projector", "lookup_windows"]

# (pose6d, betas, cam) of all N crops -> the same after pooling across views.
Merge = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
# (N, P, 3) camera-frame points -> (N, P, 2) full-image pixels.
Projector = Callable[[Tensor], Tensor]

_IDENTITY_6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


@dataclass(frozen=True)
class RefitOutput:
    """The estimate after the last step, per crop (camera frame; SMPL model frame for points)."""

    pose6d: Tensor  # (N, 144)
    rotmat: Tensor  # (N, 24, 3, 3)
    betas: Tensor  # (N, 10)
    cam: Tensor  # (N, 3) weak-perspective crop camera
    translation: Tensor  # (N, 3) camera-frame translation of the SMPL body, metres
    vertices: Tensor  # (N, 6890, 3) posed, without translation
    joints: Tensor  # (N, 49, 3) SPIN joints, without translation
    joints2d: Tensor  # (N, 49, 2) crop pixels


def lookup_windows(corr: Tensor, coords: Tensor, radius: int) -> Tensor:
    """Bilinear look-up of a ``(2r+1)^2`` window around each marker in its own channel.

    ``corr (N, M, H, W)``, ``coords (N, M, 2)`` in feature-map pixels (x, y) -> ``(N, M, (2r+1)^2)``.
    Window element ``(i, j)`` samples ``x + i - r, y + j - r`` (the row index moves x, as the released
    models were trained), ``align_corners=True`` pixel centres, zeros outside.
    """
    N, M, H, W = corr.shape
    off = torch.arange(-radius, radius + 1, dtype=coords.dtype, device=coords.device)
    delta = torch.stack(torch.meshgrid(off, off, indexing="ij"), -1)  # (k, k, 2): (i - r, j - r) as (x, y)
    pts = coords[:, :, None, None, :] + delta  # (N, M, k, k, 2)
    size = torch.tensor([W - 1, H - 1], dtype=coords.dtype, device=coords.device)
    grid = (2 * pts / size - 1).reshape(N * M, 2 * radius + 1, 2 * radius + 1, 2)
    out = F.grid_sample(corr.reshape(N * M, 1, H, W), grid, align_corners=True)
    return out.reshape(N, M, -1)


def _record(trace: dict | None, **values: Tensor) -> None:
    if trace is not None:
        for key, value in values.items():
            trace.setdefault(key, []).append(value.detach().clone())


class Refit(nn.Module):
    """ReFit with an HRNet ``backbone`` (``"w48"`` or ``"w32"``) on 256x256 crops.

    Weights: :func:`mocap.fitting.refit.load_refit` fills them from a released checkpoint. The SMPL
    buffers (``smpl``; ``smpl_male``/``smpl_female`` exist only because the checkpoints carry them) come
    from the checkpoint or from an SMPL-format body via :meth:`set_body`.
    """

    def __init__(self, backbone: str = "w48", hidden_dim: int = 32, radius: int = 3, flow_dim: int = 5,
                 local_dim: int = 256, marker_dropout: float = 0.25):
        super().__init__()
        if backbone not in HRNET_WIDTHS:
            raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(HRNET_WIDTHS)}")
        self.backbone_name, self.radius, self.flow_dim = backbone, radius, flow_dim
        self.register_buffer("init_pose", torch.tensor(_IDENTITY_6D * 24)[None])
        self.register_buffer("init_shape", torch.zeros(1, 10))
        self.register_buffer("init_cam", torch.tensor([[0.9, 0.0, 0.0]]))
        self.smpl = RefitSMPL()
        self.smpl_male = RefitSMPL()
        self.smpl_female = RefitSMPL()
        self.backbone = HRNet(HRNET_WIDTHS[backbone])
        M = len(MARKER_VERTEX_IDS)
        self.register_buffer("markers", torch.tensor(MARKER_VERTEX_IDS), persistent=False)
        self.init_layer = nn.Linear(self.backbone.global_dim, 26 * hidden_dim)
        c = 256
        self.corr_layer = nn.Sequential(
            nn.Conv2d(self.backbone.feature_dim, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, M, 1, 1, 0, bias=False))
        self.flow_layer = MultiLinear(M, (2 * radius + 1) ** 2, flow_dim)
        self.local_layer = nn.Linear(M * flow_dim, local_dim)
        # Drops whole markers while training (identity in eval mode).
        self.masked_layer = nn.Dropout1d(p=marker_dropout)
        self.update_block = UpdateBlock(local_dim + 3 + 144 + 10 + 3, hidden_dim)
        self.regressor = Regressor(hidden_dim)
        self.float()  # the checkpoints' dtype, whatever torch's default dtype is

    def set_body(self, body, J_regressor_extra=None) -> None:
        """Fill the three SMPL layers from a :class:`mocap.body.model.BodyModel` of SMPL topology."""
        for layer in (self.smpl, self.smpl_male, self.smpl_female):
            layer.set_body(body, J_regressor_extra)

    def encode(self, img: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, 3, 256, 256)`` ImageNet-normalised crops -> feature map ``(N, C, 64, 64)``, global ``(N, G)``."""
        return self.backbone(img)

    def project(self, points: Tensor, cam: Tensor, geom: CropGeometry, projector: Projector | None = None) -> Tensor:
        """``(N, P, 3)`` SMPL points (no translation) -> ``(N, P, 2)`` crop pixels, through the full frame."""
        points = points + geom.cam_to_translation(cam)[:, None]
        full = geom.pinhole(points) if projector is None else projector(points)
        return geom.to_crop(full)

    def _estimate(self, pose6d, betas, cam, geom, merge, projector, trace):
        if merge is not None:
            pose6d, betas, cam = merge(pose6d, betas, cam)
        rotmat = rot6d_to_matrix(pose6d.reshape(-1, 24, 6))
        verts, joints = self.smpl(rotmat, betas)
        j2d = self.project(joints, cam, geom, projector)
        _record(trace, pred_pose6d=pose6d, pred_rotmat=rotmat, pred_shape=betas, pred_cam=cam, pred_j3d=joints,
                pred_j2d=j2d)
        return pose6d, betas, cam, rotmat, verts, joints, j2d

    def forward(self, img: Tensor, geom: CropGeometry, iters: int = 5, merge: Merge | None = None,
                projector: Projector | None = None, trace: dict | None = None) -> RefitOutput:
        """Run the backbone and ``iters`` feedback-update steps; see :meth:`refine`."""
        feature, z = self.encode(img)
        _record(trace, backbone_feature=feature, backbone_z=z)
        return self.refine(feature, z, geom, iters, merge, projector, trace)

    def refine(self, feature: Tensor, z: Tensor, geom: CropGeometry, iters: int = 5, merge: Merge | None = None,
               projector: Projector | None = None, trace: dict | None = None) -> RefitOutput:
        """The recurrent part, from backbone outputs.

        Args:
            feature, z: :meth:`encode`'s outputs for the ``N`` crops.
            geom: where the crops lie in their images (:class:`CropGeometry`).
            iters: number of feedback-update steps after the initial estimate.
            merge: pools the ``N`` estimates after the initial estimate and after every step (multi-view
                averaging, Shape ReFit); ``None`` keeps each crop's own estimate.
            projector: camera-frame points -> full-image pixels; ``None`` is the ideal pinhole of ``geom``
                (a calibrated rig passes its real intrinsics and distortion).
            trace: a dict that receives every intermediate, under the reference data's names.
        """
        N = feature.shape[0]
        bbox_info = geom.bbox_info()
        h0 = self.init_layer(z)
        corr = self.corr_layer(feature)
        _record(trace, bbox_info=bbox_info, init_layer_out=h0, corr_full=corr)
        h = torch.tanh(h0).reshape(N, 26, -1)
        d_pose, d_shape, d_cam = self.regressor(h[:, :24], h[:, 24], h[:, 25], bbox_info)
        _record(trace, d_pose=d_pose, d_shape=d_shape, d_cam=d_cam)
        state = self._estimate(self.init_pose + d_pose, self.init_shape + d_shape, self.init_cam + d_cam,
                               geom, merge, projector, trace)
        mask = self.masked_layer(corr.new_ones(N, len(self.markers), self.flow_dim)) if self.training else None
        # The GRUs start from zero; the initial tanh features serve only the first estimate.
        hpose, hshape, hcam = torch.zeros_like(h[:, :24]), torch.zeros_like(h[:, 24]), torch.zeros_like(h[:, 25])
        for _ in range(iters):
            pose6d, betas, cam, _, verts, _, _ = state
            # The loop feeds back detached estimates: gradients flow through the hidden states, as in training.
            pose6d, betas, cam = pose6d.detach(), betas.detach(), cam.detach()
            p2d = self.project(verts[:, self.markers], cam, geom, projector).detach()
            window = lookup_windows(corr, p2d / 4, self.radius)
            flow = self.flow_layer(window)
            local = self.local_layer((flow if mask is None else flow * mask).reshape(N, -1))
            loc = torch.cat([local, bbox_info], -1)
            hpose, hshape, hcam = self.update_block(hpose, hshape, hcam, loc, pose6d, betas, cam)
            d_pose, d_shape, d_cam = self.regressor(hpose, hshape, hcam, bbox_info)
            _record(trace, p2d=p2d, window=window, flow_out=flow, local_out=local, update_x_loc=loc, hpose=hpose,
                    hshape=hshape, hcam=hcam, d_pose=d_pose, d_shape=d_shape, d_cam=d_cam)
            state = self._estimate(pose6d + d_pose, betas + d_shape, cam + d_cam, geom, merge, projector, trace)
        pose6d, betas, cam, rotmat, verts, joints, j2d = state
        return RefitOutput(pose6d, rotmat, betas, cam, geom.cam_to_translation(cam), verts, joints, j2d)
