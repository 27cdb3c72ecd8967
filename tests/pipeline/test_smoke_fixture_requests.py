import pytest

from hooks.services import service_for_hook
from tests.conftest import FIXTURES, load_request

SERVICE_FOR_HOOK = service_for_hook()  # hook -> service id, from hooks/services.py


@pytest.mark.parametrize(
    "name",
    [
        p.stem
        for p in sorted((FIXTURES / "requests").glob("*.json"))
        if "no-prefetch" not in p.stem and "partial" not in p.stem and "server" not in p.stem
    ],
)
def test_every_self_contained_fixture_request_gets_a_valid_200(call, name):
    request = load_request(name)
    response = call(SERVICE_FOR_HOOK[request["hook"]], request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert isinstance(response.get_json()["cards"], list)
