"""The control layer: the controller, its pools, the autoscaling policy, live changes, the
fleet's stats and metrics. Ray-free: it talks to actors through :mod:`fleet.control.actorsys`."""
