"""Event source mappings: lambdad reads a queue (or, later, a stream) and invokes a function with batches of it.

Modules: ``mappings.py`` (the API's rules, the store, the states), ``pollers.py`` (the manager that runs one
poller per Enabled mapping, on one node of a cluster at a time), ``sqs.py`` (the SQS source), ``rmq.py`` (Amazon MQ
for RabbitMQ), ``streams.py`` (Kinesis and DynamoDB Streams, with checkpoints per shard in the store; their parameters' rules
and record shapes in ``stream_shapes.py``, ParallelizationFactor's lanes and checkpoint rule in ``lanes.py``), and
``filtering.py`` (FilterCriteria, written separately; until it is there FilterCriteria are refused).

The poller interface
--------------------
A source type is a ``Source`` (``pollers.py``) registered in ``pollers.SOURCES`` under the service part of its
ARN (``"sqs"``; later ``"mq"``/RabbitMQ, ``"kinesis"``, ``"dynamodb"``):

- ``Source.validate(params, current) -> dict`` — the source's own rules for Create/UpdateEventSourceMapping: given
  the request's parameters (and the mapping as it is, on an update) it returns the source's fields as they will be
  stored (``BatchSize`` and ``MaximumBatchingWindowInSeconds`` with their defaults...) or raises an
  ``InvalidParameterValueException`` worded as Lambda words it. It runs in a thread (it may call the source, as
  SQS's resolves the queue URL), never on the event loop.
- ``Source.poller(mapping, target) -> Poller`` — a poller for one Enabled mapping (a ``Mapping``: its UUID, event
  source ARN, function ARN and stored fields).
- ``Poller.run()`` — polls until cancelled. It hands each batch to ``target.invoke(payload)`` (a synchronous
  invocation through the normal invoke path: concurrency, aliases, logs and metrics apply), which returns the
  ``Delivery`` (``ok``, the response payload, ``function_error``) or raises ``TooManyRequestsException`` when the
  function is throttled. The poller decides what a result means for its source (delete, return to the queue,
  ack/nack) and reports each batch with ``target.processed(result)``. Cancellation may come at any ``await``: a
  message must never be acknowledged before the function has handled it, so a cancelled poller loses nothing
  (what it held returns to the source, at the latest after the source's own visibility/redelivery timeout).
- ``Poller.aclose()`` — releases the poller's clients (called after ``run`` ended, once).
- ``target.matches(record) -> bool`` — the mapping's FilterCriteria applied to one record (as its event shows
  it); a record that does not match is consumed without an invocation, as Lambda consumes it.

A poller never writes the mapping; the manager restarts it when the mapping changes.
"""
