"""``vcs chaos`` (``make chaos``): a soak under random faults, judged from the public contracts.

In the spirit of Jepsen's RabbitMQ tests: the whole system of ``make run`` on a
private RabbitMQ node (:mod:`system`), offices submitting and cancelling over
HTTP with idempotent retries (:mod:`clients`), a fault at each interval
(:mod:`faults`), and at the end a checker (:mod:`check`) fed only by what any
outsider can see (:mod:`record`): nothing lost, nothing booked twice, nothing
sent twice, no event re-published under a new id, every dead letter explained.
"""
