"""camfleet_autoscaler_decisions_total: every (action, reason, target) a fleet's pools and
cameras can see is exported at 0 from the first scrape, and the decisions taken count on top.
Pure data: a FleetMetrics fed by hand, read through its registry; no server, no Ray."""

from __future__ import annotations

from collections import Counter

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleet.control.metrics import FleetMetrics
from fleet.control.policy import PoolSignal, possible_actions
from fleet.control.stats import FleetSnapshot

FACE = PoolSignal("face", target=1, running=1, pending=0, utilisation=0.0, service_s=None,
                  num_cpus=1.0, min_actors=1, max_actors=4)


def decisions(owner: FleetMetrics) -> dict[tuple[str, str, str], float]:
    text = generate_latest(owner.registry).decode()
    (family,) = [f for f in text_string_to_metric_families(text)
                 if f.name == "camfleet_autoscaler_decisions"]
    return {(s.labels["action"], s.labels["reason"], s.labels["target"]): s.value
            for s in family.samples if s.name.endswith("_total")}


def test_a_calm_fleet_exports_every_decision_it_can_see_at_0():
    # given: a fleet with one CPU pool (batching off) and two cameras, no decision taken yet
    owner = FleetMetrics("calm")
    owner.update(FleetSnapshot(0.0), Counter(), possible_actions([FACE], ["a", "b"]))
    # then: each series is there at 0, and only those that can occur
    assert decisions(owner) == {
        ("scale_up", "demand", "detector:face"): 0, ("scale_up", "below_min", "detector:face"): 0,
        ("scale_down", "low_utilisation", "detector:face"): 0,
        ("capacity_limited", "cluster_cpus", "detector:face"): 0,
        ("buffers_up", "bursts", "camera:a"): 0, ("buffers_down", "latency_slo", "camera:a"): 0,
        ("buffers_up", "bursts", "camera:b"): 0, ("buffers_down", "latency_slo", "camera:b"): 0,
    }


def test_decisions_taken_count_on_top_and_outlive_their_camera():
    # given: decisions taken, one of them for a camera since removed
    owner = FleetMetrics("busy")
    taken = Counter({("scale_up", "demand", "detector:face"): 2,
                     ("buffers_up", "bursts", "camera:gone"): 1})
    owner.update(FleetSnapshot(0.0), taken, possible_actions([FACE], ["a"]))
    series = decisions(owner)
    # then: the counts are there, the removed camera's too (a counter never goes back)
    assert series[("scale_up", "demand", "detector:face")] == 2
    assert series[("buffers_up", "bursts", "camera:gone")] == 1
    assert series[("buffers_down", "latency_slo", "camera:a")] == 0
    assert ("buffers_down", "latency_slo", "camera:gone") not in series


def test_before_the_first_step_there_is_an_empty_family():
    assert decisions(FleetMetrics("new")) == {}
