"""``camfleet bench``: measured figures, always as ratios to a baseline taken in the same run.

- ``transport``: the camera -> detector hand-off against one memcpy of the same frame, and
  against the usual ways (:mod:`fleet.bench.baselines`).
- ``autoscale``: a load step on real Ray, the autoscaled fleet against a fixed one sized for
  the peak.
- ``fleet``: cameras x fps on real Ray against the compute bound of the same detector.
- ``raydata``: the same detector through Ray Data's ``map_batches``, against a camfleet fleet.

Each mode prints a markdown table, writes ``--json`` and a PNG plot, and shows progress on stderr.
The command is :mod:`fleet.bench.main`; this package imports nothing, so importing one bench
module (say the baselines, which need no Ray) does not pull in the others. What modes share (the
fleet builder, probes, footage, the hand-off through a real camera) is in
:mod:`fleet.bench.common`, and no mode imports another (``tests/unit/test_bench_fleets.py``).
"""
