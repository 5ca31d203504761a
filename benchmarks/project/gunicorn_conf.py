"""gunicorn settings for Pi-latency-bound callbacks: ``-c python:benchmarks.project.gunicorn_conf``.

A callback spends most of its time waiting on Pi (two to four round trips), and a few
milliseconds of CPU. A sync worker would sit idle through those waits, one request at a time, so:

* ``gthread`` workers: each thread waits on Pi without holding the GIL, so one process keeps
  many callbacks in flight;
* one worker process per core: the CPU-bound part (Django, DRF, psycopg) runs in parallel across
  cores, which threads of one process cannot do; a third worker on 2 cores measured slower;
* 16 threads per worker: room for every callback 16 clients keep in flight (32 measured the
  same, within the noise, at 16 and at 64 clients);
* ``reuse_port``: the kernel spreads new connections evenly over the workers; without it one
  worker may hold most keep-alive connections while the other idles (about 15% less
  throughput at 16 clients);
* a GIL switch interval of 1 ms instead of 5: a thread whose Pi answer (or SQL result) has
  arrived takes the GIL back sooner from a thread busy rendering (about 7% more callbacks per
  second at 16 clients);
* keep-alive, as Pi frontends reuse their connection.
"""

import multiprocessing
import sys
from typing import Any

worker_class = "gthread"
workers = multiprocessing.cpu_count()
threads = 16
keepalive = 75
reuse_port = True
backlog = 2048
timeout = 60
accesslog = None
errorlog = "-"
loglevel = "warning"


def post_worker_init(worker: Any) -> None:
    """Shorten the GIL switch interval in each worker process."""
    sys.setswitchinterval(0.001)
