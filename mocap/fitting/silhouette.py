"""The silhouette term: the fitted mesh's projection should stay inside each view's person mask and fill it.

Two sets of residual rows per view, appended to the keypoint rows of :class:`~mocap.fitting.solver.Linearization`
so that the joint step and each view's own proposal (ReFit's per-view feedback) both see them:

- *inside*: for ``N`` surface vertices spread over the body, the distance (pixels) from the vertex's projection
  to the mask, 0 inside it. Every vertex projects inside the mesh's own silhouette, so this holds for all of
  them whatever the occlusion; bilinear on a distance transform of the cropped mask, exact gradient.
- *fill*: for ``C`` points along the mask's outer boundary, the distance along the boundary's normal to the
  nearest projected vertex of a denser set (ICP, point to line; the pairing is redone at every iteration). Where the mask
  reaches beyond the mesh this pulls the mesh out to it; where the mesh is already beyond the boundary the
  nearest vertex lies on the boundary and the inside rows take over.

Residuals are in pixels times the keypoints' scale (metres at the body over ``robust.sigma``), each set
weighed by ``weight / rows`` (the fill rows ``fill`` times that) so that a view's silhouette counts like ``weight`` keypoints, with Geman-McClure
IRLS weights at the keypoints' robust scale (a mask that misses an arm or adds a coat is outvoted). Masks are
per person (another person's pixels are not in them), so other people never pull the body.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor

from mocap.fitting.kinematics import project_jacobian
from mocap.fitting.solver import BodyPoints, Linearization, geman_mcclure_weights, keypoint_jacobian


@dataclass(frozen=True)
class SilhouetteConfig:
    enabled: bool = True
    """Use the person masks of keypoints2d.h5 when it has them (``mocap detect --masks``, the default)."""
    weight: float = 64.0
    """How many keypoints each of the two terms of a view counts for."""
    shape_weight: float = 256.0
    """The inside term's ``weight`` while the subject's shape is fitted (`mocap.fitting.sequence.fit_shape`);
    the fill term keeps ``weight`` x ``fill``. Staying inside the masks is what tells a body's width, which
    33 keypoints barely see; filling them more would widen clothed people (their masks are wider than the
    body). Rendered sessions (`benchmarks/fitting_rendered.py`'s, and arm_raise, turn, mixed with seed 7),
    fitted shape at 64 / 256 / 512: MPJPE 13.5 / 13.2 / 13.3 and 12.1 / 11.4 / 11.2 mm (true betas 12.5
    and 10.7). 256, as 512 moved the Pose2Sim sample's fits further (reprojection 15.7 -> 16.0 px, 15.8 at 256)."""
    vertices: int = 400
    """Surface vertices whose Jacobians the solver computes (farthest-point samples of the template)."""
    candidates: int = 1500
    """Vertices the fill term pairs boundary points with (a superset: positions only, each moving with its
    nearest Jacobian vertex); fewer leave a pairing inset under the silhouette's edge that fattens the body."""
    contour: int = 64
    """Boundary points of the fill term per view."""
    fill: float = 1.0
    """The fill term's weight over the inside term's. Clothes make a real person's mask wider than the body,
    and the fill term then widens the shape; below 1 it trusts the masks less: on the Pose2Sim sample
    leave-one-view-out was 27.5 px at 1.0 and 27.1 at 0.5, on rendered bodies (no clothes) MPJPE 18.8 and
    20.4 mm (`benchmarks/fitting_rendered.py`), so the default keeps full weight."""
    threshold: float = 0.5
    """Person probability above which a mask pixel belongs to the person."""


@dataclass(frozen=True)
class Silhouettes:
    """Masks prepared for fitting ``B`` frames in ``V`` views; ``S`` mask pixels a side, ``C`` boundary points."""

    dist: Tensor  # (B, V, S, S) signed distance from each mask pixel's centre to the mask's edge, image pixels, < 0 inside
    box: Tensor  # (B, V, 4) x0, y0, x1, y1 the mask covers (mocap.detect.masks conventions)
    contour: Tensor  # (B, V, C, 2) image pixels along the mask's outer boundary
    normal: Tensor  # (B, V, C, 2) the boundary's outward unit normal there
    valid: Tensor  # (B, V) bool: the view has a non-empty mask

    def index(self, t) -> "Silhouettes":
        return Silhouettes(self.dist[t], self.box[t], self.contour[t], self.normal[t], self.valid[t])


def prepare(masks: np.ndarray, boxes: np.ndarray, image_sizes: np.ndarray, cfg: SilhouetteConfig,
            dtype=torch.float32, occluders: np.ndarray | None = None) -> Silhouettes:
    """``masks`` (B, V, S, S) uint8 person probability x 255 over ``boxes`` (B, V, 4) (NaN where none), in
    images of ``image_sizes`` (V, 2) width, height; ``occluders`` (B, V, S, S) the other people's masks on the
    same grids, where this person may be hidden."""
    B, V, S, _ = masks.shape
    dist = np.zeros((B, V, S, S), np.float32)
    contour, normal = np.zeros((B, V, cfg.contour, 2)), np.zeros((B, V, cfg.contour, 2))
    valid = np.zeros((B, V), bool)
    for b, v in zip(*np.nonzero(np.isfinite(boxes).all(-1))):
        hidden = None if occluders is None else occluders[b, v] >= cfg.threshold * 255
        view = _view(masks[b, v], boxes[b, v], image_sizes[v], cfg, hidden)
        if view is not None:
            dist[b, v], contour[b, v], normal[b, v] = view
            valid[b, v] = True
    as_t = lambda a: torch.as_tensor(a, dtype=dtype)
    return Silhouettes(as_t(dist), as_t(np.nan_to_num(boxes)), as_t(contour), as_t(normal), torch.as_tensor(valid))


def _view(mask: np.ndarray, box: np.ndarray, image_size, cfg: SilhouetteConfig, hidden: np.ndarray | None = None):
    """One mask's signed distance field (S, S), boundary points and normals (C, 2) in image pixels; None when it
    holds too little. Mask pixels outside the image or ``hidden`` (S, S) by another person are unknown: they
    count as the person's for the distance (a body leaving the frame or behind someone is not pulled in) and
    boundary points next to them or to the box's edge (where the person goes on beyond what the mask saw) are
    not used."""
    import cv2

    S = mask.shape[-1]
    cell = (box[2] - box[0]) / S  # image pixels per mask pixel (the box is square)
    centres = box[:2] + (np.arange(S)[:, None] + 0.5) * cell  # (S, 2) x of columns, y of rows
    w, h = image_size
    unknown = ~(((centres[:, 1] >= -0.5) & (centres[:, 1] <= h - 0.5))[:, None]
                & ((centres[:, 0] >= -0.5) & (centres[:, 0] <= w - 0.5))[None, :])
    if hidden is not None:
        unknown = unknown | hidden
    inside = mask >= cfg.threshold * 255
    person = inside | unknown
    if inside.sum() < 16 or person.all():
        return None
    outside_dist = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, 5)
    inside_dist = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 5)
    # The boundary runs half a pixel beyond the last pixel centres inside: signed distance to it, >0 outside.
    signed = np.where(person, 0.5 - inside_dist, outside_dist - 0.5)
    lines, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([c[:, 0] for c in lines])  # (n, 2) column, row
    near_unknown = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    keep = ~near_unknown[pts[:, 1], pts[:, 0]] & (pts > 0).all(1) & (pts < S - 1).all(1)
    if keep.sum() < 8:
        return None
    pts = pts[keep][np.linspace(0, keep.sum() - 1, cfg.contour).round().astype(int)]
    gy, gx = np.gradient(signed)
    n = np.stack([gx, gy], -1)[pts[:, 1], pts[:, 0]]
    n = n / np.linalg.norm(n, axis=-1, keepdims=True).clip(1e-9)
    edge = pts + 0.5 + _edge_offset(mask, pts.astype(np.float64), n, cfg.threshold)[:, None] * n
    return signed * cell, box[:2] + edge * cell, n


def _edge_offset(mask: np.ndarray, pts: np.ndarray, n: np.ndarray, threshold: float) -> np.ndarray:
    """``(C,)`` where along the outward normals ``n`` (C, 2) from boundary pixels ``pts`` (C, 2) (column, row)
    the person probability crosses ``threshold``: linear between the pixel and one pixel further out, in mask
    pixels (0.5 for a hard mask; a segmenter's soft edge gives the sub-pixel position)."""
    S = mask.shape[-1]
    p = mask.astype(np.float64) / 255.0
    x, y = np.clip(pts[:, 0] + n[:, 0], 0, S - 1), np.clip(pts[:, 1] + n[:, 1], 0, S - 1)
    x0, y0 = np.minimum(np.floor(x), S - 2).astype(int), np.minimum(np.floor(y), S - 2).astype(int)
    fx, fy = x - x0, y - y0
    out = ((1 - fy) * ((1 - fx) * p[y0, x0] + fx * p[y0, x0 + 1]) + fy * ((1 - fx) * p[y0 + 1, x0] + fx * p[y0 + 1, x0 + 1]))
    here = p[pts[:, 1].astype(int), pts[:, 0].astype(int)]
    return np.clip((here - threshold) / np.maximum(here - out, 1e-6), 0.0, 1.0)


@dataclass(frozen=True)
class Surface:
    """The body's surface as the silhouette term samples it."""

    jacobian: BodyPoints  # N vertices with Jacobians (the inside term, and the fill term's steps)
    candidates: np.ndarray  # (D,) vertex ids the fill term pairs with, the first N of them the Jacobian vertices
    owner: Tensor  # (D,) each candidate's nearest Jacobian vertex on the template
    members: Tensor  # (N, M) the candidates each Jacobian vertex owns, padded with itself (candidate n is vertex n)

    @classmethod
    def of(cls, body, cfg: SilhouetteConfig) -> "Surface":
        template = body.layer.v_template.detach().double().numpy()
        order = _farthest_points(template.tobytes(), max(cfg.vertices, cfg.candidates))
        sparse, dense = order[:cfg.vertices], order[:max(cfg.vertices, cfg.candidates)]
        v = body.layer.v_template.detach()
        owner = torch.cdist(v[dense], v[sparse]).argmin(-1)
        groups = [torch.nonzero(owner == n)[:, 0] for n in range(len(sparse))]
        width = max(map(len, groups))
        members = torch.stack([torch.cat([g, g.new_full((width - len(g),), n)]) for n, g in enumerate(groups)])
        spec = SimpleNamespace(joint_index=np.full(len(sparse), -1), vertex_index=sparse, weights=np.ones(len(sparse)),
                               names=tuple(f"v{i}" for i in sparse))
        return cls(BodyPoints(body, spec), dense, owner, members)

    def positions(self, p) -> Tensor:
        """``(B, D, 3)`` world positions of the candidates."""
        return self.jacobian.body.points(p.global_orient, p.body_pose, p.betas, p.transl, vertex_ids=self.candidates)[1]


@functools.lru_cache(maxsize=4)
def _farthest_points(template: bytes, n: int) -> np.ndarray:
    """``n`` indices of the template's vertices (float64 (M, 3) as bytes, the cache's key) in farthest-point
    order from vertex 0: deterministic, and every prefix is spread over the surface."""
    v = np.frombuffer(template, dtype=np.float64).reshape(-1, 3)
    chosen = [0]
    d = np.linalg.norm(v - v[0], axis=1)
    for _ in range(n - 1):
        chosen.append(int(d.argmax()))
        d = np.minimum(d, np.linalg.norm(v - v[chosen[-1]], axis=1))
    return np.array(chosen)


def sample_distance(sil: Silhouettes, uv: Tensor) -> tuple[Tensor, Tensor]:
    """Distance to the mask ``(B, V, N)`` (image pixels, 0 inside) at image points ``uv`` (B, V, N, 2) and its
    gradient ``(B, V, N, 2)``: the signed distance bilinear inside the mask's box, plus the distance to the box
    beyond it, clamped at 0."""
    S = sil.dist.shape[-1]
    cell = (sil.box[..., 2] - sil.box[..., 0]).clamp_min(1e-6)[..., None, None] / S  # (B, V, 1, 1)
    q = (uv - sil.box[..., None, :2]) / cell - 0.5  # mask pixel coordinates, centres at integers
    qc = q.clamp(0, S - 1)
    beyond = (q - qc) * cell  # image pixels outside the box
    x0 = qc[..., 0].floor().clamp(max=S - 2)
    y0 = qc[..., 1].floor().clamp(max=S - 2)
    fx, fy = qc[..., 0] - x0, qc[..., 1] - y0
    flat = sil.dist.flatten(-2)
    at = (y0 * S + x0).long()
    d00, d01 = flat.gather(-1, at), flat.gather(-1, at + 1)
    d10, d11 = flat.gather(-1, at + S), flat.gather(-1, at + S + 1)
    value = (1 - fy) * ((1 - fx) * d00 + fx * d01) + fy * ((1 - fx) * d10 + fx * d11)
    inner = (q >= 0) & (q <= S - 1)  # the clamp's derivative
    gx = ((1 - fy) * (d01 - d00) + fy * (d11 - d10)) * inner[..., 0]
    gy = ((1 - fx) * (d10 - d00) + fx * (d11 - d01)) * inner[..., 1]
    # Beyond the box the distance grows, unless the person reaches the box's edge there (then it is unknown).
    far = beyond.norm(dim=-1) * (value > 0)
    value = value + far
    grad = torch.stack([gx, gy], -1) / cell + beyond / far.clamp_min(1e-9)[..., None]
    return value.clamp_min(0), grad * (value > 0)[..., None]


def _nearest(points: Tensor, proj: Tensor, proj_c: Tensor, members: Tensor) -> Tensor:
    """``(B, V, C)`` index of the candidate nearest each of ``points`` (B, V, C, 2): the nearest Jacobian vertex
    ``proj`` (B, V, N, 2) first, then the nearest of the candidates the three nearest own (a full search over
    all ``D`` candidates cost a third of the whole fit)."""
    first = torch.cdist(points, proj).topk(3, -1, largest=False).indices  # (B, V, C, 3)
    group = members[first].flatten(-2)  # (B, V, C, 3M)
    B, V = group.shape[:2]
    b, v = torch.arange(B)[:, None, None, None], torch.arange(V)[None, :, None, None]
    d = (proj_c[b, v, group] - points[..., None, :]).norm(dim=-1)  # (B, V, C, M)
    return group.gather(-1, d.argmin(-1, keepdim=True))[..., 0]


def with_silhouettes(lin: Linearization, surface: Surface, cams, p, sil: Silhouettes, with_betas: bool,
                     cfg: SilhouetteConfig, robust) -> Linearization:
    """``lin`` with both terms' rows appended to each view's keypoint rows (``error_px`` stays the keypoints')."""
    J_X, X = keypoint_jacobian(surface.jacobian, p, with_betas)
    with torch.no_grad():
        depth = cams.depth(X).median(-1).values.clamp_min(0.1)  # (B, V)
        X_c = surface.positions(p)
    J, r, w = silhouette_rows(J_X, X, X_c, surface, cams, sil, depth / cams.K[:, 0, 0] / robust.sigma, cfg, robust)
    return lin.with_rows(J, r, w)


def silhouette_rows(J_X: Tensor, X: Tensor, X_c: Tensor, surface: Surface, cams, sil: Silhouettes, scale: Tensor,
                    cfg: SilhouetteConfig, robust) -> tuple[Tensor, Tensor, Tensor]:
    """Rows ``J`` (B, V, N + C, P), residuals ``r`` and IRLS weights ``w`` (B, V, N + C) of both terms.

    Args:
        J_X, X: ``(B, N, 3, P)`` Jacobian and ``(B, N, 3)`` world positions of the Jacobian vertices.
        X_c: ``(B, D, 3)`` positions of the fill term's candidates (``surface.candidates``).
        scale: ``(B, V)`` pixels -> unit-variance residual of the keypoint rows.
    """
    proj, J_uv = project_jacobian(X, cams.K, cams.dist, cams.R, cams.t)  # (B,V,N,2), (B,V,N,2,3)
    d, g = sample_distance(sil, proj)
    J_in = torch.einsum("bvni,bvnij,bnjp->bvnp", g, J_uv, J_X)
    B, V, C = sil.contour.shape[:3]
    with torch.no_grad():
        proj_c = cams.project(X_c)  # (B, V, D, 2)
        pair = _nearest(sil.contour, proj, proj_c, surface.members)  # (B, V, C)
    b, v = torch.arange(B)[:, None, None], torch.arange(V)[None, :, None]
    r_fill = (sil.normal * (proj_c[b, v, pair] - sil.contour)).sum(-1)  # (B, V, C)
    k = surface.owner[pair]  # the Jacobian vertex each pairing moves with
    J_fill = torch.einsum("bvci,bvcij,bvcjp->bvcp", sil.normal, J_uv[b, v, k], J_X[b, k])
    N = X.shape[1]
    root = torch.cat([torch.full((N,), (cfg.weight / N) ** 0.5), torch.full((C,), (cfg.fill * cfg.weight / C) ** 0.5)]).to(X.dtype)
    s = scale[..., None] * root  # (B, V, N + C)
    r = torch.cat([d, r_fill], -1) * s
    J = torch.cat([J_in, J_fill], 2) * s[..., None]
    at_body = torch.cat([d, r_fill], -1) * scale[..., None] * robust.sigma  # metres at the body
    w = geman_mcclure_weights(at_body, robust.scale) * sil.valid[..., None]
    return J, r, w
