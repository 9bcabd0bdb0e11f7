"""The RabbitMQ event source of event source mappings (Lambda's Amazon MQ for RabbitMQ source): the rules of
Create/UpdateEventSourceMapping for a broker ARN, and the poller that feeds the function from ``rabbitmq.py``'s
``RabbitSource``.

A mapping names the broker by its ``arn:aws:mq:…:broker:…`` ARN, one queue (``Queues``), the BASIC_AUTH secret's
ARN and at most one VIRTUAL_HOST (``SourceAccessConfigurations``), as on AWS; both ARNs are resolved through the
registry ``lambdad brokers`` writes (``brokers.py``), read again at every (re)connection. The poller takes one batch
at a time (Lambda runs one concurrent invocation per RabbitMQ mapping): up to BatchSize messages within the batching
window (0.5 s when the mapping says 0, Lambda's default), FilterCriteria applied (records that match no filter are
acknowledged at once), then one synchronous invocation; the batch is acknowledged when the function succeeded and
returned to the queue (nack with requeue) when it failed, was throttled or could not run, so that nothing is lost —
a message the function keeps failing on comes back again and again (a second apart), as on Lambda (use the
queue's own dead-letter policy or a delivery limit). A broker that cannot be reached is retried with backoff and said in
LastProcessingResult.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Mapping as MappingType

from lambdad.errors import InvalidParameterValueException, LambdaError, TooManyRequestsException
from lambdad.esm import brokers
from lambdad.esm.mappings import Mapping
from lambdad.esm.pollers import Poller, Target
from lambdad.esm.rabbitmq import DEFAULT_BATCH_SIZE, DEFAULT_WINDOW_SECONDS, MAX_BATCH_SIZE, RabbitSource, \
    RabbitSourceError
from lambdad.store.interfaces import BrokerStore

__all__ = ["RmqSource"]

log = logging.getLogger(__name__)

# what an Amazon MQ mapping may not carry (streams', Kafka's, SQS's own)
_UNSUPPORTED = ("StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor", "DestinationConfig",
                "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
                "TumblingWindowInSeconds", "Topics", "SelfManagedEventSource", "AmazonManagedKafkaEventSourceConfig",
                "SelfManagedKafkaEventSourceConfig", "DocumentDBEventSourceConfig", "ScalingConfig",
                "FunctionResponseTypes")
_BACKOFF_MAX = 30.0
_RETRY_AFTER_FAILURE = 1.0  # seconds before a failed batch is taken again


def _access(config: MappingType[str, Any]) -> tuple[str, str]:
    """The BASIC_AUTH secret's ARN and the virtual host of a mapping's SourceAccessConfigurations."""
    secret, vhost = "", "/"
    for item in config.get("SourceAccessConfigurations") or ():
        if item.get("Type") == "BASIC_AUTH":
            secret = str(item.get("URI") or "")
        elif item.get("Type") == "VIRTUAL_HOST":
            vhost = str(item.get("URI") or "/")
    return secret, vhost


class RmqSource:
    def __init__(self, store: BrokerStore) -> None:
        self._store = store

    def validate(self, event_source_arn: str, params: MappingType[str, Any],
                 current: MappingType[str, Any] | None) -> dict[str, Any]:
        for name in _UNSUPPORTED:
            if params.get(name) is not None:
                raise InvalidParameterValueException(
                    f"Unsupported {name} parameter for given event source mapping type.")
        try:
            brokers.validate_broker_arn(event_source_arn)
        except brokers.BrokerError as exc:
            raise InvalidParameterValueException(str(exc)) from exc
        fields: dict[str, Any] = {"BatchSize": DEFAULT_BATCH_SIZE, "MaximumBatchingWindowInSeconds": 0}
        if current is not None:
            fields = {k: current.get(k, v) for k, v in fields.items()}
            fields["Queues"] = current.get("Queues")
            fields["SourceAccessConfigurations"] = current.get("SourceAccessConfigurations")
        for key in ("BatchSize", "MaximumBatchingWindowInSeconds"):
            if params.get(key) is not None:
                fields[key] = int(params[key])
        if current is not None and (params.get("Queues") is not None):
            raise InvalidParameterValueException("Queues cannot be updated.")
        if current is None:
            queues = params.get("Queues") or []
            if len(queues) != 1:
                raise InvalidParameterValueException(
                    "An Amazon MQ event source mapping needs exactly one queue in Queues.")
            fields["Queues"] = [str(queues[0])]
        if params.get("SourceAccessConfigurations") is not None:
            fields["SourceAccessConfigurations"] = [dict(item) for item in params["SourceAccessConfigurations"]]
        access = fields.get("SourceAccessConfigurations") or []
        kinds = [item.get("Type") for item in access]
        if kinds.count("BASIC_AUTH") != 1 or kinds.count("VIRTUAL_HOST") > 1 or \
                any(kind not in ("BASIC_AUTH", "VIRTUAL_HOST") for kind in kinds):
            raise InvalidParameterValueException(
                "An Amazon MQ event source mapping needs one BASIC_AUTH SourceAccessConfiguration (the secret's ARN) "
                "and at most one VIRTUAL_HOST.")
        try:
            brokers.validate_secret_arn(_access(fields)[0])
        except brokers.BrokerError as exc:
            raise InvalidParameterValueException(str(exc)) from exc
        if not 1 <= fields["BatchSize"] <= MAX_BATCH_SIZE:
            raise InvalidParameterValueException(
                f"BatchSize must be between 1 and {MAX_BATCH_SIZE} for an Amazon MQ event source.")
        if not 0 <= fields["MaximumBatchingWindowInSeconds"] <= 300:
            raise InvalidParameterValueException("MaximumBatchingWindowInSeconds must be between 0 and 300.")
        return fields

    def poller(self, mapping: Mapping, target: Target) -> Poller:
        return RmqPoller(self._store, mapping, target)

    def close(self) -> None:
        pass


class RmqPoller:
    def __init__(self, store: BrokerStore, mapping: Mapping, target: Target) -> None:
        config = mapping.config
        secret, vhost = _access(config)
        self._target = target
        self._batch_size = int(config.get("BatchSize") or DEFAULT_BATCH_SIZE)
        self._window = float(config.get("MaximumBatchingWindowInSeconds") or 0) or DEFAULT_WINDOW_SECONDS
        self._source = RabbitSource(mapping.event_source_arn, str(config["Queues"][0]), vhost,
                                    brokers.endpoint_source(store, mapping.event_source_arn, secret))
        self._uuid = mapping.uuid

    async def run(self) -> None:
        delay = 0.5
        while True:  # open: until the broker, the queue and the credentials are there
            try:
                await self._source.open()
                break
            except (RabbitSourceError, brokers.BrokerError) as exc:
                reason = getattr(exc, "reason", None)
                self._target.processed(f"PROBLEM: {reason + ': ' if reason else ''}{exc}")
                log.warning("event source mapping %s: %s", self._uuid, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
        throttled = 0.0
        while True:
            batch = await self._source.next_batch(self._batch_size, self._window)
            if batch is None:
                if self._source.last_error:
                    self._target.processed(f"PROBLEM: {self._source.last_error}")
                continue
            if await batch.keep_only(self._target.matches) == 0:
                continue  # nothing matched a filter: acknowledged, no invocation
            try:
                delivery = await self._target.invoke(json.dumps(batch.event()).encode())
            except TooManyRequestsException:
                await batch.nack()
                throttled = min(max(throttled * 2, 1.0), _BACKOFF_MAX)
                self._target.processed("PROBLEM: Function call throttled")
                await asyncio.sleep(throttled)
                continue
            except LambdaError as exc:
                await batch.nack()
                self._target.processed(f"PROBLEM: {exc.message}")
                await asyncio.sleep(1.0)
                continue
            except BaseException:
                await asyncio.shield(batch.nack())  # cancelled mid-invocation: the messages go back
                raise
            throttled = 0.0
            if delivery.ok:
                await batch.ack()
                self._target.processed("OK")
            else:
                await batch.nack()
                self._target.processed(f"PROBLEM: Function call failed ({delivery.function_error})")
                await asyncio.sleep(_RETRY_AFTER_FAILURE)  # not a tight loop on a batch that keeps failing

    async def aclose(self) -> None:
        await self._source.close()
