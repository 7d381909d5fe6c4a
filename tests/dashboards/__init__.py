"""Checks for dashboards/: the PromQL helpers (queries.py) and the npm project that type-checks
the dashboards against Grafana's schema (package.json, grafana.ts, generate.mjs)."""
