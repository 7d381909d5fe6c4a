"""camfleet: real-time computer vision over fleets of cameras on Ray."""

__version__ = "0.1.0"
