import pytest

from tests.auth.helpers import isolated_client


@pytest.fixture
def client(app):
    return isolated_client(app)
