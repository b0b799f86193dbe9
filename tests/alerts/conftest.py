"""The funded app of the usage API tests serves the alert tests too."""

from tests.test_usage_api import api, api_settings  # noqa: F401 - fixtures
