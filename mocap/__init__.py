"""mocap: multi-view markerless motion capture.

The names in ``__all__`` are the Python API (docs/api.md): sessions and their files, the stages (synthesize,
detect, fit, export, evaluate) and the errors they raise. Each is imported on first use (PEP 562's module
``__getattr__``), so that ``import mocap`` and ``mocap --help`` stay fast: torch, OpenCV and mediapipe load
only when a stage is first touched.
"""

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_API = {
    # a session folder and its files
    "Session": "mocap.session", "SessionConfig": "mocap.config",
    "Camera": "mocap.cameras", "CameraRig": "mocap.cameras",
    "load_rig": "mocap.io.calibration_toml", "save_rig": "mocap.io.calibration_toml",
    "Keypoints2D": "mocap.io.keypoints_h5", "Detections2D": "mocap.io.keypoints_h5",
    "read_keypoints": "mocap.io.keypoints_h5", "read_detections": "mocap.io.keypoints_h5",
    "write_keypoints": "mocap.io.keypoints_h5",
    "SmplSequence": "mocap.io.smpl_npz", "load_sequence": "mocap.io.smpl_npz", "save_sequence": "mocap.io.smpl_npz",
    "BodyModel": "mocap.body.model", "load_body": "mocap.body.model",
    # the stages, in workflow order
    "SynthConfig": "mocap.synth.session", "synthesize": "mocap.synth.session",
    "detect_session": "mocap.detect.stage",
    "shape_session": "mocap.fitting.run", "run_session": "mocap.fitting.run", "FitResult": "mocap.fitting.sequence",
    "export_sequence": "mocap.io.export",
    "evaluate_files": "mocap.eval.evaluate", "Metrics": "mocap.eval.metrics",
    # errors
    "MocapError": "mocap.errors", "ConfigError": "mocap.errors", "InputDataError": "mocap.errors",
    "CalibrationError": "mocap.errors", "FittingError": "mocap.errors", "MissingDependencyError": "mocap.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'mocap' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
