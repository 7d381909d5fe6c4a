"""Sinks: where a camera's events go. Imports nothing, so that ``fleet.sinks.rotation`` (read by
the controller and the report) stays light; import the modules themselves:

    events     EventSink: what a camera does with its results; combines the sinks below
    jsonl      JsonlWriter: events.jsonl, batched, O_APPEND, rotated by size
    snapshots  the snapshot sink: each object's best JPEG, optionally frames; pruned
    base       PushSink (bounded queue + worker thread) and PushStats; FileCounts
    push       PUSH_SINKS, the registry of push sinks by name, and open_push_sinks
    webhook    WebhookSink (sinks.webhook);  mqtt: MqttSink (sinks.mqtt)
    rotation   size-rotated logs, their parts, the snapshot pruner (imports nothing of camfleet)

Adding a push sink (say ``sinks.kafka``): give it a settings model that subclasses
``fleet.config._push.PushSinkSettings`` (with ``enabled``), a field ``kafka`` of ``SinksConfig``,
and a class in ``fleet/sinks/kafka.py`` that subclasses ``fleet.sinks.base.PushSink``: set
``name``, hand ``super().__init__`` the secrets to mask, open the transport, call ``_start()``,
and implement ``_attempt`` (one delivery: sent, retry or rejected; ``_finish`` to close). Then
add ``PushSinkKind("kafka", KafkaSinkConfig, KafkaSink)`` to ``PUSH_SINKS`` in ``push.py``:
cameras open it when enabled, its stats, drop reasons and metrics come from the base, and
``tests/unit/test_sink_registry.py`` fails until config and registry agree.
"""
