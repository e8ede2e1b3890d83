"""ReFit, the recurrent fitting network (Wang & Daniilidis, ICCV 2023), single- and multi-view.

- :class:`Refit` the network (state dict identical to the released checkpoints), :func:`load_refit`;
- :func:`fit_refit_multiview` multi-view ReFit over a calibrated rig (world-consistent or reference averaging).
"""

from .checkpoint import load_refit
from .crop import CropGeometry, geometry_of_map
from .model import Refit, RefitOutput
from .multiview import MULTIVIEW_MODES, RefitMultiviewResult, fit_refit_multiview, make_crops

__all__ = ["Refit", "RefitOutput", "load_refit", "CropGeometry", "geometry_of_map",
           "fit_refit_multiview", "make_crops", "RefitMultiviewResult", "MULTIVIEW_MODES"]
