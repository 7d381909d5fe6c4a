"""One backoff for everything that retries: a camera reopening its source, a push sink
delivering again, an MQTT client reconnecting.

Capped exponential with jitter downwards: the n-th delay is drawn from
``[base * (1 - jitter), base]`` with ``base = min(max_s, initial_s * 2**n)``, so cameras (or
sinks) that lost one peer together do not retry in step, and no delay ever exceeds ``max_s``.

>>> b = Backoff(1.0, 8.0, jitter=0.0)
>>> [b.next_delay() for _ in range(5)]
[1.0, 2.0, 4.0, 8.0, 8.0]
>>> b.reset(); b.next_delay()
1.0
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 60  # 2**60 s is past any cap; more would only overflow the float


class Backoff:
    """Capped exponential backoff with jitter; ``reset`` after a success."""

    def __init__(self, initial_s: float, max_s: float, jitter: float = 0.5,
                 rng: random.Random | None = None):
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter is a fraction of the delay, 0 to 1, not {jitter}")
        self.initial_s, self.max_s, self.jitter = initial_s, max_s, jitter
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * 2 ** min(self.attempt, _MAX_DOUBLINGS))
        self.attempt += 1
        return base * self.rng.uniform(1 - self.jitter, 1.0) if self.jitter else base

    def reset(self) -> None:
        self.attempt = 0
