"""ReFit's recurrent update block and regressor (ReFit section 3.3-3.4).

Shapes: ``N`` crops; 24 joints; hidden size ``H`` (32 in the released models); the update input
``x = [local feature (256), bbox_info (3), pose 6D (144), betas (10), cam (3)]`` (416 values).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["MultiLinear", "GRU", "UpdateBlock", "Regressor"]


class MultiLinear(nn.Module):
    """``n_head`` independent linear maps applied in one einsum: ``(N, heads, in) -> (N, heads, out)``.

    Weight ``(heads, out, in)``, bias ``(heads, out)``, as in the released checkpoints.
    """

    def __init__(self, n_head: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_head, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n_head, out_features))
        # Same initial distribution as nn.Linear (the layout matters for checkpoints, the values only for training).
        bound = 1 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("kij,bkj->bki", self.weight, x) + self.bias


class GRU(nn.Module):
    """GRU cell with linear gates on ``[h, x]``: ``h' = (1 - z) h + z tanh(Wq [r h, x])``.

    With ``heads``, that many GRUs with separate weights run batched: hidden ``(N, heads, H)``, input
    ``(N, heads, C)`` (ReFit's 24 joint GRUs).
    """

    def __init__(self, hidden_dim: int, input_dim: int, heads: int | None = None):
        super().__init__()
        make = (lambda i, o: nn.Linear(i, o)) if heads is None else (lambda i, o: MultiLinear(heads, i, o))
        self.lz = make(hidden_dim + input_dim, hidden_dim)
        self.lr = make(hidden_dim + input_dim, hidden_dim)
        self.lq = make(hidden_dim + input_dim, hidden_dim)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        hx = torch.cat([h, x], -1)
        z = torch.sigmoid(self.lz(hx))
        r = torch.sigmoid(self.lr(hx))
        q = torch.tanh(self.lq(torch.cat([r * h, x], -1)))
        return (1 - z) * h + z * q


class UpdateBlock(nn.Module):
    """One GRU per joint plus a shape GRU and a camera GRU, all fed the same input vector."""

    def __init__(self, input_dim: int, hidden_dim: int = 32):
        super().__init__()
        self.pose_gru = GRU(hidden_dim, input_dim, heads=24)
        self.shape_gru = GRU(hidden_dim, input_dim)
        self.cam_gru = GRU(hidden_dim, input_dim)

    def forward(self, hpose: Tensor, hshape: Tensor, hcam: Tensor, loc: Tensor, pose: Tensor, shape: Tensor,
                cam: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``hpose (N, 24, H)``, ``hshape, hcam (N, H)``, ``loc (N, 259)``, ``pose (N, 144)``,
        ``shape (N, 10)``, ``cam (N, 3)`` -> the three new hidden states."""
        x = torch.cat([loc, pose, shape, cam], -1)
        hpose = self.pose_gru(hpose, x[:, None].expand(-1, hpose.shape[1], -1))
        return hpose, self.shape_gru(hshape, x), self.cam_gru(hcam, x)


class Regressor(nn.Module):
    """Hidden states (+ bbox_info) -> updates of the 6D pose ``(N, 144)``, betas ``(N, 10)`` and crop camera ``(N, 3)``."""

    def __init__(self, hidden_dim: int = 32):
        super().__init__()
        cin = hidden_dim + 3
        self.p = nn.Sequential(MultiLinear(24, cin, hidden_dim), nn.ReLU(inplace=True))
        self.s = nn.Sequential(nn.Linear(cin, hidden_dim), nn.ReLU(inplace=True))
        self.c = nn.Sequential(nn.Linear(cin, hidden_dim), nn.ReLU(inplace=True))
        self.decpose = MultiLinear(24, hidden_dim, 6)
        self.decshape = nn.Linear(hidden_dim, 10)
        self.deccam = nn.Linear(hidden_dim, 3)

    def forward(self, hpose: Tensor, hshape: Tensor, hcam: Tensor, bbox_info: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n = hpose.shape[0]
        hpose = torch.cat([hpose, bbox_info[:, None].expand(-1, hpose.shape[1], -1)], -1)
        d_pose = self.decpose(self.p(hpose)).reshape(n, -1)
        d_shape = self.decshape(self.s(torch.cat([hshape, bbox_info], -1)))
        d_cam = self.deccam(self.c(torch.cat([hcam, bbox_info], -1)))
        return d_pose, d_shape, d_cam
