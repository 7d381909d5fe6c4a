"""Sinks: where events go. Files (events.jsonl with rotation, snapshots) and push sinks
(webhook, MQTT)."""
