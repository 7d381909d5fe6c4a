"""What the bench modes share, so that no mode imports another.

- :mod:`.fleets`: the one fleet builder (FleetConfig objects, never YAML text), and the fleets
  two modes share;
- :mod:`.running`: a fleet's controller in this process, its control loop, one measured point;
- :mod:`.probes`: what a fleet's processes and Ray's object store hold;
- :mod:`.footage`: a frame of real footage, and the frames a synthetic camera draws;
- :mod:`.handoff`: the camera -> detector hand-off through a real camera, and its parts.

Like :mod:`fleet.bench`, this package imports nothing itself, and none of its modules imports
Ray at import time: Ray is imported only once a mode runs.
"""
