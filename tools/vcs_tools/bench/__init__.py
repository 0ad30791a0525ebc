"""``make bench`` (``python -m vcs_tools.bench``): how fast the whole path is, against its floor.

One run starts its own stack the way ``make run`` does (the embedded store on
a free port unless ``VCS_MONGODB_URL`` is set, an SMTP sink, the three
services as processes), in namespaces of its own (``bench-<hex>``), with a
generated national pool: for each of the 77 provinces one 300-seat room per
district office, so all 928 offices can meet at once. Then it measures:

1. floor: the same requests allocated by the allocator's handler and store
   code called in this process (no HTTP, no broker), on a fresh database;
2. store limit: a bare client doing the nine writes a request needs (request,
   slots, decision, delivery, status and outbox-sent updates) for the same
   requests at the same concurrency (:mod:`vcs_tools.bench.limit`);
3. burst: all 928 offices submit one request over HTTP for the same morning,
   timed until every request is final (seen on a tap queue of the exchange),
   counting the store commands of every service (pymongo command monitoring,
   read from each process's ``/metrics``);
4. steady: 10 requests/s for 60 s, p50/p95/p99 of submit → ``credentials.delivered``;
5. peak RSS (VmHWM) of every service process;
6. with ``--scaling``: the burst with 3 allocator processes, and with twice the
   requests (every office asks for the morning and the afternoon) with 3 and 1, in that order.

It prints progress, a table, and ends with exactly one line::

    BENCH n=928 full_s=… floor_s=… floor_ratio=… store_limit_s=… limit_ratio=… cmds_per_req=…
    p50_ms=… p99_ms=… rss_mb_max=… lost=…

``floor_ratio = full_s / floor_s``, ``limit_ratio = full_s / store_limit_s``;
``cmds_per_req`` is the store commands of all services during the burst per accepted
request; ``lost`` counts accepted requests that never became final in any run;
``p50_ms``/``p99_ms`` are from the steady load. Interrupted (Ctrl-C, SIGTERM), it
prints the table of what it measured so far.
Everything it created (exchanges, queues, databases) is deleted at the end;
service logs stay in ``bench-results/logs/``.

Flags:

``--quick``                 the first 100 offices only, steady load for 10 s
                            (a couple of minutes; its BENCH line says n=100)
``--offices N``             only the first N offices (default: all 928)
``--concurrency N``         HTTP requests in flight during a burst (default 64)
``--floor-concurrency N``   also time the floor with N concurrent allocations (default 1: one
                            after the other only; the faster run is the floor)
``--steady-rate R``         requests per second of the steady load (default 10)
``--steady-seconds S``      how long the steady load lasts (default 60; 0 skips it)
``--allocators N``          allocator processes of the main burst and steady load (default 1)
``--scale-allocators N``    allocator processes of the scaling runs (default 3)
``--scaling``               also the scaling runs (about 15 minutes more)
``--plot [PATH]``           an SVG of completions and latency over time, per stage, for the
                            burst and the steady load (default ``bench-results/bench.svg``)
``--stall-timeout S``       give up waiting when no request became final for S seconds (default 60)
``--results DIR``           where logs and ``last.txt`` go (default ``bench-results``)
``--profile``               py-spy flame graphs of every process during the main burst
                            (``<results>/profiles/*.svg``; py-spy is a dev dependency)
"""
