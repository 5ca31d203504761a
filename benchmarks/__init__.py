"""``make bench``: the figures of docs/performance.md, measured against a real server.

gunicorn serves :mod:`benchmarks.project` on PostgreSQL, the sandbox answers every Pi and Horizon
call after an injected latency, and :mod:`benchmarks.run` drives both and prints one table.
"""
