"""HRNet-W48 / W32 backbone as ReFit uses it: a 64x64 multi-resolution feature map and a global feature vector.

Written in plain torch (no timm/torchvision: there is no torchvision CPU wheel for our pinned torch, and the
module tree must reproduce the released checkpoints' state-dict names exactly, which timm's HRNet does not).
The layout follows Sun et al. 2019 (HRNet) with ReFit's heads:

- feature map ``(N, 15 w, 64, 64)`` for a ``(N, 3, 256, 256)`` crop: the four branch outputs, the lower
  three up-sampled (bilinear, ``align_corners=True``) to 1/4 resolution and concatenated (720 channels
  for W48, 480 for W32);
- global feature ``(N, 8 w)``: the branches merged top-down by strided convolutions, a 1x1 conv and an
  average pool (384 for W48, 256 for W32).

The three downsampling modules are registered twice (``downsample_stage_{1,2,3}`` and
``downsamples.{0,1,2}``) because the released state dicts carry both names for the same tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["HRNet", "HRNET_WIDTHS"]

HRNET_WIDTHS = {"w48": 48, "w32": 32}
_BN_MOMENTUM = 0.1


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=_BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=_BN_MOMENTUM)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=_BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


def _residual_stack(block: type, cin: int, planes: int, n: int) -> nn.Sequential:
    cout = planes * block.expansion
    down = None
    if cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, momentum=_BN_MOMENTUM))
    return nn.Sequential(block(cin, planes, 1, down), *(block(cout, planes) for _ in range(n - 1)))


class HighResolutionModule(nn.Module):
    """Parallel branches of 4 basic blocks each, then every branch receives the sum of all branches
    resampled to its resolution (1x1 conv + nearest up-sampling from coarser, strided 3x3 convs from finer)."""

    def __init__(self, channels: list[int]):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(_residual_stack(BasicBlock, c, c, 4) for c in channels)
        self.fuse_layers = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
                                             nn.BatchNorm2d(channels[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:
                    steps = [_conv_bn(channels[j], channels[j], 3, 2, relu=True) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(channels[j], channels[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


def _transition(cin: list[int], cout: list[int]) -> nn.ModuleList:
    """Keeps the existing branches (adapting their width where it changes) and adds one coarser branch."""
    layers = nn.ModuleList()
    for i, c in enumerate(cout):
        if i < len(cin):
            layers.append(_conv_bn(cin[i], c, 3, 1, relu=True) if cin[i] != c else None)
        else:
            layers.append(nn.Sequential(_conv_bn(cin[-1], c, 3, 2, relu=True)))
    return layers


def _upsample(n_layers: int, c: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(n_layers):
        layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                   nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c, momentum=_BN_MOMENTUM), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _downsample(c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * c, momentum=_BN_MOMENTUM),
                         nn.ReLU(inplace=True))


class HRNet(nn.Module):
    """``(N, 3, 256, 256)`` ImageNet-normalised crops -> feature map ``(N, 15 w, 64, 64)``, global ``(N, 8 w)``."""

    def __init__(self, width: int = 48):
        super().__init__()
        w = width
        self.feature_dim, self.global_dim = 15 * w, 8 * w
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=_BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _residual_stack(Bottleneck, 64, 64, 4)
        c2, c3, c4 = [w, 2 * w], [w, 2 * w, 4 * w], [w, 2 * w, 4 * w, 8 * w]
        self.transition1 = _transition([256], c2)
        self.stage2 = nn.Sequential(HighResolutionModule(c2))
        self.transition2 = _transition(c2, c3)
        self.stage3 = nn.Sequential(*(HighResolutionModule(c3) for _ in range(4)))
        self.transition3 = _transition(c3, c4)
        self.stage4 = nn.Sequential(*(HighResolutionModule(c4) for _ in range(3)))
        self.upsample_stage_2 = _upsample(1, 2 * w)
        self.upsample_stage_3 = _upsample(2, 4 * w)
        self.upsample_stage_4 = _upsample(3, 8 * w)
        self.downsample_stage_1 = _downsample(w)
        self.downsample_stage_2 = _downsample(2 * w)
        self.downsample_stage_3 = _downsample(4 * w)
        self.downsamples = nn.ModuleList([self.downsample_stage_1, self.downsample_stage_2, self.downsample_stage_3])
        self.final_layer = nn.Sequential(nn.Conv2d(8 * w, 8 * w, 1, 1, 0, bias=False),
                                         nn.BatchNorm2d(8 * w, momentum=_BN_MOMENTUM), nn.ReLU(inplace=True))

    @staticmethod
    def _branch_inputs(transition: nn.ModuleList, ys: list[Tensor]) -> list[Tensor]:
        return [ys[i] if t is None else t(ys[min(i, len(ys) - 1)]) for i, t in enumerate(transition)]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        ys = self.stage2(self._branch_inputs(self.transition1, ys))
        ys = self.stage3(self._branch_inputs(self.transition2, ys))
        ys = self.stage4(self._branch_inputs(self.transition3, ys))
        feature = torch.cat([ys[0], self.upsample_stage_2(ys[1]), self.upsample_stage_3(ys[2]),
                             self.upsample_stage_4(ys[3])], 1)
        g = ys[0]
        for i, down in enumerate(self.downsamples):
            g = down(g) + ys[i + 1]
        g = self.final_layer(g)
        return feature, g.mean((-2, -1))
