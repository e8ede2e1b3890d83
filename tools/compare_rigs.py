"""Compare a calibration with a reference one, e.g. `mocap calibrate` on a synthetic session's board footage
against the session's true rig, after aligning the world frames (`mocap.calib.compare`).

    PYTHONPATH=. python tools/compare_rigs.py ESTIMATE.toml REFERENCE.toml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mocap.calib.compare import compare_rigs
from mocap.io.calibration_toml import load_rig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("estimate", type=Path)
    ap.add_argument("reference", type=Path)
    a = ap.parse_args()
    e = compare_rigs(load_rig(a.estimate), load_rig(a.reference))
    for c, name in enumerate(e.cameras):
        print(f"{name}: focal {100 * e.focal[c]:.3f} %, principal point {e.principal_px[c]:.2f} px, "
              f"centre {1000 * e.centre_m[c]:.1f} mm, orientation {e.rotation_deg[c]:.3f} deg")
    print(f"worst: focal {100 * e.focal.max():.3f} %, principal point {e.principal_px.max():.2f} px, "
          f"centre {1000 * e.centre_m.max():.1f} mm, orientation {e.rotation_deg.max():.3f} deg")


if __name__ == "__main__":
    main()
