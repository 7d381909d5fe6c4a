"""camfleet's Grafana dashboards: ``build.py`` writes the JSON files here from the modules beside
it (``grafana.py``, the vocabulary; ``fleet_dashboard.py`` and ``camera_dashboard.py``)."""
