"""Request ids are version 4 UUIDs as text."""

import uuid

from lambdad.ids import request_id


def test_request_ids_are_distinct_uuid4_text() -> None:
    ids = [request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_trace_headers_have_lambdas_shape() -> None:
    import re

    from lambdad.ids import trace_header

    header = trace_header(1_700_000_000.5)
    assert re.fullmatch(r"Root=1-6553f100-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", header), header
    assert trace_header(0) != trace_header(0)
