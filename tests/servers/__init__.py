"""Real servers for tests, on 127.0.0.1.

Cameras: HTTP MJPEG (``mjpeg_server.py``, in-process) and RTSP (``rtsp_server.py``, a
gst-rtsp-server subprocess), with their fixtures in ``fixtures.py``.

Receivers for the push sinks (``push.py``, with its fixtures ``http_receiver`` and
``mosquitto``): ``HttpReceiver``, an in-process webhook receiver that records what it accepts,
answers scripted error statuses, and stops and comes back on the same port; and a mosquitto
broker subprocess (Debian's ``mosquitto``) that a test can pause, SIGKILL and start again.
"""
