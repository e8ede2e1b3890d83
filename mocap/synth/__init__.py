"""Synthetic multi-view sessions whose truth is known: a camera ring, procedural motion, 2D keypoints with
realistic detector failures, optional rendered footage. World frame: metres, y up, floor at y = 0."""
