"""Benchmarks (`edge-t2i bench`): every backend side by side, interleaved, in one process.

runner.py (configurations, timing) -> stats.py (percentiles), macs.py + peaks.py (utilization)
-> report.py (table, JSON), plot.py (PNG).
"""
