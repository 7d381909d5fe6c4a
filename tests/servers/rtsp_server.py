#!/usr/bin/python3
"""A real RTSP server for tests, built on Debian's gst-rtsp-server.

Run it with the system python3 (GObject introspection comes from Debian, not from the venv)::

    /usr/bin/python3 tests/servers/rtsp_server.py --port 0 --path /cam
    /usr/bin/python3 tests/servers/rtsp_server.py --frames-dir /tmp/vtest --fps 10 --codec jpeg \\
        --user admin --password hunter2

When it is ready it prints one line, ``rtsp://127.0.0.1:PORT/cam``, and serves until it gets
SIGTERM or SIGINT (or is killed). Each client gets its own pipeline (the factory is not shared).
With ``--frames-dir`` (a non-live source) the client's stream starts on a key frame; the live test
pattern's first key frame goes by while the server prerolls, so a client joins mid-GOP, as it
does on most cameras. Needs ``gir1.2-gst-rtsp-server-1.0`` and ``python3-gi``; see
``scripts/apt-packages.txt``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402 - after gi.require_version

# H.264 encoders in order of preference: openh264enc comes with gstreamer1.0-plugins-bad, which
# libgstrtspserver already depends on; x264enc (gstreamer1.0-plugins-ugly) if that is missing.
_H264_ENCODERS = {
    "openh264enc": "openh264enc gop-size={gop} complexity=low bitrate=2000000",
    "x264enc": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate=2000",
}


def _source(args: argparse.Namespace) -> str:
    """Raw video at the requested size and rate, from the test pattern or a folder of JPEGs."""
    caps = f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1"
    if args.frames_dir:
        pattern = os.path.join(os.path.abspath(args.frames_dir), "%05d.jpg")
        # multifilesrc stamps buffers from the framerate in its caps; loop=true never ends.
        return (
            f'multifilesrc location="{pattern}" index=0 loop=true '
            f'caps="image/jpeg,framerate={args.fps}/1" '
            f"! jpegdec ! videoconvert ! videoscale ! {caps}"
        )
    return f"videotestsrc is-live=true pattern={args.pattern} ! {caps}"


def _encoder(args: argparse.Namespace) -> str:
    if args.codec == "jpeg":
        return (
            "videoconvert ! video/x-raw,format=I420 ! jpegenc quality=80 "
            "! rtpjpegpay name=pay0 pt=26"
        )
    for name, template in _H264_ENCODERS.items():
        if Gst.ElementFactory.find(name) is not None:
            encoder = template.format(gop=max(1, round(args.keyframe_interval_s * args.fps)))
            return (
                f"videoconvert ! video/x-raw,format=I420 ! {encoder} ! h264parse "
                "! rtph264pay name=pay0 pt=96 config-interval=-1"
            )
    raise SystemExit(
        "rtsp_server: no H.264 encoder (x264enc or openh264enc); install gstreamer1.0-plugins-ugly "
        "or gstreamer1.0-plugins-bad, or use --codec jpeg"
    )


def build_launch(args: argparse.Namespace) -> str:
    """The gst-launch description one client's media runs."""
    return f"( {_source(args)} ! {_encoder(args)} )"


def _check_launch(launch: str) -> None:
    # The server builds pipelines only when a client connects; fail now, loudly, instead.
    try:
        Gst.parse_launch(launch.strip("() "))
    except GLib.Error as error:
        raise SystemExit(
            f"rtsp_server: cannot build pipeline {launch!r}: {error.message}"
        ) from None


def _add_auth(server: GstRtspServer.RTSPServer, factory: GstRtspServer.RTSPMediaFactory,
              user: str, password: str) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    factory.add_role_from_structure(
        Gst.Structure.from_string(
            "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]
    )


def serve(args: argparse.Namespace) -> None:
    Gst.init(None)
    launch = build_launch(args)
    _check_launch(launch)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))  # "0": the OS picks a free port
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    if args.user is not None:
        _add_auth(server, factory, args.user, args.password or "")
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"rtsp_server: cannot listen on {args.host}:{args.port}")
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"rtsp://{args.host}:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 lets the OS choose")
    parser.add_argument("--path", default="/cam", help="mount path of the stream")
    parser.add_argument("--codec", choices=("h264", "jpeg"), default="h264", help="RTP payload")
    parser.add_argument("--frames-dir", help="folder of 00000.jpg, 00001.jpg, ... to loop over; "
                        "default: a videotestsrc pattern")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern")
    parser.add_argument("--width", type=int, default=768, help="frame width in pixels")
    parser.add_argument("--height", type=int, default=576, help="frame height in pixels")
    parser.add_argument("--fps", type=int, default=10, help="frames per second")
    parser.add_argument("--keyframe-interval-s", type=float, default=1.0,
                        help="seconds between H.264 key frames (cameras use 1-10)")
    parser.add_argument("--user", help="require RTSP Basic auth with this user")
    parser.add_argument("--password", help="password for --user")
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        parser.error("--path must start with /")
    return args


if __name__ == "__main__":
    try:
        serve(parse_args())
    except KeyboardInterrupt:
        sys.exit(0)
