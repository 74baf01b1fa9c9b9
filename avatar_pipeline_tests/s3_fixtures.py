"""Reusable S3 fixtures: moto's server on loopback, spoken to over real HTTP.

Use from any test package's ``conftest.py``::

    from avatar_pipeline_tests.s3_fixtures import moto_s3_endpoint, s3_store  # noqa: F401

``moto_s3_endpoint`` (session) is the server's URL; ``s3_store`` is an ``S3ObjectStore`` with
fresh, uniquely named buckets for each test (``avatars`` gets a public-read policy).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from avatar_pipeline.storage.s3 import S3ObjectStore

DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # moto's dummy credentials
REGION = "us-east-1"

_DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
    "AWS_DEFAULT_REGION": REGION,
    # Never read a developer's real AWS config or credentials files.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """Start moto's threaded server on 127.0.0.1 (a free port) with dummy credentials."""
    werkzeug_logger = logging.getLogger("werkzeug")
    previous_level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.ERROR)  # one access-log line per request otherwise
    with pytest.MonkeyPatch.context() as env:
        for name, value in _DUMMY_AWS_ENV.items():
            env.setenv(name, value)
        for name in _UNSET_AWS_ENV:
            env.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            werkzeug_logger.setLevel(previous_level)


def unique_bucket_names() -> dict[str, str]:
    """Real bucket names no other test uses: ``avatars-<hex>``, ``scenes-<hex>``."""
    suffix = uuid.uuid4().hex[:16]
    return {"avatars": f"avatars-{suffix}", "scenes": f"scenes-{suffix}"}


def make_s3_store(endpoint_url: str, **overrides: object) -> S3ObjectStore:
    """An ``S3ObjectStore`` on ``endpoint_url`` with fresh buckets, created on the spot."""
    options: dict[str, object] = {
        "endpoint_url": endpoint_url,
        "region": REGION,
        "bucket_names": unique_bucket_names(),
        "access_key_id": DUMMY_ACCESS_KEY_ID,
        "secret_access_key": DUMMY_SECRET_ACCESS_KEY,
        "create_buckets": True,
    }
    options.update(overrides)
    return S3ObjectStore(**options)  # type: ignore[arg-type]


@pytest.fixture
def s3_store(moto_s3_endpoint: str) -> S3ObjectStore:
    """A store on moto with buckets no other test touches."""
    return make_s3_store(moto_s3_endpoint)
