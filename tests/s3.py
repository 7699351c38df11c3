"""An S3-compatible object store on loopback for tests: moto's S3 in server mode.

``S3Server`` runs moto's werkzeug server in a thread of the test process on a free
loopback port. Airflow (in-process or a whole deployment) reaches it over a real socket
through the connection of :meth:`S3Server.airflow_connection`, an ``aws`` connection whose
``endpoint_url`` points at it, and so goes through the amazon provider's S3 filesystem
(s3fs, aiobotocore), exactly as against Amazon S3. Tests read what was written with a plain
boto3 client (:meth:`S3Server.client`), not through the product.

What the server does that tests must know: it keeps every bucket in the memory of the test
process, so objects vanish when it stops, and it accepts any access key.
"""

from __future__ import annotations

import json
from typing import Any

REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "frontier-test", "frontier-test-secret"


class S3Server:
    """moto's S3 server on ``127.0.0.1``; a context manager that starts and stops it."""

    def __init__(self) -> None:
        self._server: Any = None
        self.endpoint_url = ""

    def __enter__(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        # Port 0: the kernel picks a free port, which the server reports once it listens.
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        """A boto3 S3 client of this server, independent of Airflow and of the product."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(self, name: str) -> str:
        """Create the bucket ``name`` (empty) and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` under ``prefix``, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )

    def read(self, bucket: str, key: str) -> bytes:
        """The bytes of one object."""
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def airflow_connection(self) -> str:
        """An Airflow ``aws`` connection of this server, as JSON for an ``AIRFLOW_CONN_<ID>`` variable."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY,
                "password": SECRET_KEY,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
            }
        )
