"""What a stream mapping looks like from outside: its parameters (the rules of Create/UpdateEventSourceMapping for
a Kinesis or DynamoDB stream) and the shapes Lambda gives its records, its tumbling-window events and its failure
records. Pure functions: no I/O, so ``streams.py`` (which reads the shards) keeps only the reading and handling.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any, Mapping as MappingType

from lambdad.errors import InvalidParameterValueException

__all__ = ["kinesis_record", "dynamodb_record", "stream_fields", "failure_record", "window_state", "epoch", "iso",
           "sequence_of", "arrival_of", "DEFAULTS"]

_UNSUPPORTED = ("Queues", "Topics", "SourceAccessConfigurations", "SelfManagedEventSource",
                "AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig",
                "DocumentDBEventSourceConfig", "ScalingConfig")
DEFAULTS: dict[str, Any] = {"BatchSize": 100, "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 1,
                            "MaximumRecordAgeInSeconds": -1, "BisectBatchOnFunctionError": False,
                            "MaximumRetryAttempts": -1}


def epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value or 0)


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def plain(value: Any) -> Any:
    """An attribute value as the event's JSON shows it: binary as base64."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def sequence_of(record: MappingType[str, Any]) -> str:
    """A record's sequence number (a Kinesis record's, or a DynamoDB stream record's under ``dynamodb``)."""
    return str(record["SequenceNumber"] if "SequenceNumber" in record else record["dynamodb"]["SequenceNumber"])


def arrival_of(record: MappingType[str, Any]) -> float:
    """When a record reached the stream (epoch seconds): what its tumbling window and its age are measured by."""
    if "ApproximateArrivalTimestamp" in record:
        return epoch(record["ApproximateArrivalTimestamp"])
    return epoch((record.get("dynamodb") or {}).get("ApproximateCreationDateTime"))


def kinesis_record(record: MappingType[str, Any], shard_id: str, arn: str, region: str,
                   function_arn: str) -> dict[str, Any]:
    """A record of GetRecords as a record of Lambda's Kinesis event."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": epoch(record.get("ApproximateArrivalTimestamp")),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": function_arn,
        "awsRegion": region,
        "eventSourceARN": arn,
    }


def dynamodb_record(record: MappingType[str, Any], arn: str, region: str) -> dict[str, Any]:
    """A record of DynamoDB Streams' GetRecords as a record of Lambda's DynamoDB event."""
    data = record.get("dynamodb") or {}
    shown: dict[str, Any] = {"ApproximateCreationDateTime": int(epoch(data.get("ApproximateCreationDateTime")))}
    for key in ("Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in data:
            shown[key] = plain(data[key])
    return {"eventID": record.get("eventID", ""), "eventName": record.get("eventName", ""),
            "eventVersion": record.get("eventVersion", "1.1"), "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion") or region, "dynamodb": shown, "eventSourceARN": arn}


def window_state(payload: bytes) -> Any:
    """The ``state`` of a tumbling window's response; None when it has none (a failed invocation)."""
    try:
        response = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(response, dict) or "state" not in response or response["state"] is None:
        return None
    return response["state"]


def failure_record(*, kinesis: bool, shard_id: str, arn: str, first: MappingType[str, Any],
                   last: MappingType[str, Any], size: int, request_id: str, function_arn: str, condition: str,
                   invokes: int, executed_version: str, function_error: str | None) -> dict[str, Any]:
    """Lambda's failure record of a batch it gives up (what goes to the OnFailure destination)."""
    info = {"shardId": shard_id, "startSequenceNumber": sequence_of(first), "endSequenceNumber": sequence_of(last),
            "approximateArrivalOfFirstRecord": iso(arrival_of(first)),
            "approximateArrivalOfLastRecord": iso(arrival_of(last)), "batchSize": size, "streamArn": arn}
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
    if function_error:
        response["functionError"] = function_error
    return {
        "requestContext": {"requestId": request_id, "functionArn": function_arn, "condition": condition,
                           "approximateInvokeCount": invokes},
        "responseContext": response,
        "version": "1.0",
        "timestamp": iso(time.time()),
        "KinesisBatchInfo" if kinesis else "DDBStreamBatchInfo": info,
    }


def stream_fields(kind: str, event_source_arn: str, params: MappingType[str, Any],
                  current: MappingType[str, Any] | None) -> dict[str, Any]:
    """The stored fields of a stream mapping (``kind``: "kinesis" or "dynamodb") from a Create (``current`` None) or
    an Update request, or InvalidParameterValueException worded as Lambda words it. Whether the stream exists is
    the caller's to check (it needs the stream's service)."""
    for name in _UNSUPPORTED:
        if params.get(name) is not None:
            raise InvalidParameterValueException(f"Unsupported {name} parameter for given event source mapping type.")
    if kind == "dynamodb" and "/stream/" not in event_source_arn:
        raise InvalidParameterValueException("Unrecognized event source, must be kinesis, dynamodb stream or sqs.")
    if current is not None:
        for name in ("StartingPosition", "StartingPositionTimestamp"):
            if params.get(name) is not None:
                raise InvalidParameterValueException(
                    f"Unsupported {name} parameter for updating an event source mapping.")
        fields = {k: current.get(k, v) for k, v in DEFAULTS.items()}
        for key in ("StartingPosition", "StartingPositionTimestamp", "_Created", "DestinationConfig"):
            if key in current:
                fields[key] = current[key]
    else:
        position = params.get("StartingPosition")
        allowed = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP") if kind == "kinesis" else ("TRIM_HORIZON", "LATEST")
        if not position:
            raise InvalidParameterValueException("StartingPosition is required for the event source.")
        if position not in allowed:
            raise InvalidParameterValueException(
                f"Unsupported starting position {position} for given event source mapping type.")
        fields = dict(DEFAULTS, StartingPosition=position, _Created=time.time())
        stamp = params.get("StartingPositionTimestamp")
        if position == "AT_TIMESTAMP":
            if stamp is None:
                raise InvalidParameterValueException("Need to specify a timestamp when using AT_TIMESTAMP.")
            fields["StartingPositionTimestamp"] = epoch(stamp)
        elif stamp is not None:
            raise InvalidParameterValueException(
                "StartingPositionTimestamp is only valid with the AT_TIMESTAMP starting position.")
    for key in DEFAULTS:
        if params.get(key) is not None:
            fields[key] = bool(params[key]) if key == "BisectBatchOnFunctionError" else int(params[key])
    most = 10000 if kind == "kinesis" else 1000
    if not 1 <= fields["BatchSize"] <= most:
        raise InvalidParameterValueException(f"BatchSize must be between 1 and {most}.")
    if not 0 <= fields["MaximumBatchingWindowInSeconds"] <= 300:
        raise InvalidParameterValueException("MaximumBatchingWindowInSeconds must be between 0 and 300.")
    if not 1 <= fields["ParallelizationFactor"] <= 10:
        raise InvalidParameterValueException("ParallelizationFactor must be between 1 and 10.")
    if not -1 <= fields["MaximumRetryAttempts"] <= 10000:
        raise InvalidParameterValueException("MaximumRetryAttempts must be between -1 and 10000.")
    age = fields["MaximumRecordAgeInSeconds"]
    if age != -1 and not 60 <= age <= 604800:
        raise InvalidParameterValueException(
            "MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800.")
    if params.get("TumblingWindowInSeconds") is not None:
        fields["TumblingWindowInSeconds"] = int(params["TumblingWindowInSeconds"])
    elif current is not None and "TumblingWindowInSeconds" in current:
        fields["TumblingWindowInSeconds"] = current["TumblingWindowInSeconds"]
    if not 0 <= int(fields.get("TumblingWindowInSeconds", 0)) <= 900:
        raise InvalidParameterValueException("TumblingWindowInSeconds must be between 0 and 900.")
    if params.get("DestinationConfig") is not None:
        config = params["DestinationConfig"] or {}
        if config.get("OnSuccess", {}).get("Destination"):
            raise InvalidParameterValueException(
                "Unsupported OnSuccess destination for given event source mapping type.")
        target = str((config.get("OnFailure") or {}).get("Destination") or "")
        if target and (target.split(":")[2:3] not in (["sqs"], ["sns"]) or target.count(":") < 5):
            raise InvalidParameterValueException(
                "Unsupported OnFailure destination: lambdad sends a stream's failure records to an SQS queue "
                "or an SNS topic.")
        fields["DestinationConfig"] = {"OnFailure": {"Destination": target}} if target else {"OnFailure": {}}
    return fields
