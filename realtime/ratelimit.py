"""
The times of a socket's last frames, for its rate limit: at most `limit`
frames within any `window` seconds.

A ring of C doubles rather than a `deque(maxlen=limit)` of floats: a deque
allocates a block of 64 slots (about 760 bytes with the float objects) on its
first frame, which every idle socket kept; this array grows by 8 bytes a frame
up to `limit` and never beyond.
"""

from __future__ import annotations

from array import array


class FrameTimes:
    __slots__ = ("limit", "_times", "_oldest")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times = array("d")
        self._oldest = 0  # index of the oldest time once the ring is full

    def admit(self, now: float, window: float) -> bool:
        """Count a frame at `now`, unless `limit` frames already came within
        `window` seconds before it (then False, and it is not counted)."""
        times = self._times
        if len(times) < self.limit:
            times.append(now)
            return True
        if not self.limit or now - times[self._oldest] < window:
            return False
        times[self._oldest] = now
        self._oldest = (self._oldest + 1) % self.limit
        return True
