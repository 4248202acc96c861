"""The end-to-end latency test, above both the engine and replay (which it runs against each other).

- :mod:`rtbci.latency.harness` — a Session replayed in real time into the engine, in separate
  processes over LSL (``rtbci latency``, the latency and soak benchmarks);
- :mod:`rtbci.latency.summary` — the figures from the engine's per-bin records;
- :mod:`rtbci.latency.plot` — the figure (histograms and latency over time).
"""
