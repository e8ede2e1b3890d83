"""mocap: multi-view markerless motion capture."""
__version__ = "0.1.0"
