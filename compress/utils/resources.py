"""Wall time and peak resident memory of a block of work."""

from __future__ import annotations

import threading
import time

import psutil


class ResourceMonitor:
    """`with ResourceMonitor() as m:` then `m.wall_s`, `m.peak_rss_bytes` (sampled every `interval` seconds)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_rss_bytes = 0
        self.wall_s = 0.0
        self._process = psutil.Process()
        self._stop = threading.Event()

    def _sample(self) -> None:
        while True:
            self.peak_rss_bytes = max(self.peak_rss_bytes, self._process.memory_info().rss)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "ResourceMonitor":
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss_bytes = max(self.peak_rss_bytes, self._process.memory_info().rss)
        self.wall_s = time.perf_counter() - self._start
