"""Fuzzing the service from its OpenAPI spec (schemathesis, over real HTTP): no input gives a 500.

Schemathesis generates requests for every operation of ``/openapi.json`` (random multipart bodies,
query strings and headers, valid and invalid), sends them to the running app and checks each
answer with ``not_a_server_error``. Its pytest plugin does not load under this pytest, so the
hypothesis strategies it builds are driven by a plain ``@given`` test.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error


@pytest.fixture(scope="module")
def operations(running_app):
    schema = schemathesis.openapi.from_url(f"{running_app.url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in found} >= {"/predict", "/health"}
    return running_app.url, found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(operations, mode: GenerationMode) -> None:
    base_url, found = operations
    seen: dict[int, int] = {}

    for operation in found:
        if mode is GenerationMode.NEGATIVE and operation.path == "/health":
            continue  # it takes no input, so there is nothing invalid to send
        @given(data=st.data())
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(data) -> None:
            case = data.draw(operation.as_strategy(mode))
            response = case.call(base_url=base_url)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            case.validate_response(response, checks=[not_a_server_error])

        run()
    assert not any(code >= 500 for code in seen), seen
    assert sum(seen.values()) >= 60 and any(400 <= code < 500 for code in seen), seen
