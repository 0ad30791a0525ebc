"""The operators' desk: what the regional communication centres work with, behind the intake.

An internal service: it has no public address. The intake (the one front door)
authenticates operators and forwards ``/v1/admin/dead-letters*`` here with an
internal token; the desk accepts nothing else and applies the operator's scope
itself. Today it lists and replays dead letters (its own RabbitMQ user reads
the dead-letter queues and replays through ``<ns>.replay``, so the
internet-facing intake needs neither); later it holds the operators' read
models, support tickets and the audit log in its own database (``<ns>_desk``).

Read top-down: ``settings`` (its one settings class), ``deadletters`` (the
broker work), ``api`` (the internal HTTP API), ``bootstrap`` (the composition root).
"""
