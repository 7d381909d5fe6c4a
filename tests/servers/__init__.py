"""Real camera servers for tests: HTTP MJPEG (in-process) and RTSP (gst-rtsp-server subprocess)."""
