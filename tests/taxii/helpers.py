"""Helpers for the TAXII tests: clients of the live server built with the OASIS `taxii2-client`
library (token as the Basic password, the library's default scheme), and stix2 validation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import stix2
from taxii2client.v21 import ApiRoot, Collection, Server

from members.models import Member, TrustGroup

TAXII = "application/taxii+json;version=2.1"


@dataclass
class TaxiiMember:
    member: Member
    token: str
    base_url: str
    _opened: list[Any] = field(default_factory=list)

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/taxii2/"

    @property
    def api_root_url(self) -> str:
        return f"{self.base_url}/taxii2/api/"

    def server(self) -> Server:
        server = Server(self.discovery_url, user="any-name", password=self.token)
        self._opened.append(server)
        return server

    def api_root(self) -> ApiRoot:
        root = ApiRoot(self.api_root_url, user="any-name", password=self.token)
        self._opened.append(root)
        return root

    def collection(self, group: TrustGroup | str) -> Collection:
        """A collection by group (or group slug), opened the way a client would: by its URL."""
        if isinstance(group, str):
            group = TrustGroup.objects.get(slug=group)
        url = f"{self.api_root_url}collections/{group.collection_id}/"
        collection = Collection(url, user="any-name", password=self.token)
        self._opened.append(collection)
        return collection

    def http(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> requests.Response:
        """A raw request, for what the client library will not send (bad headers and the like)."""
        headers = {"Accept": TAXII, **kwargs.pop("headers", {})}
        if auth:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return requests.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def close(self) -> None:
        for endpoint in self._opened:
            endpoint.close()


def all_members_collection(client: TaxiiMember) -> Collection:
    return client.collection(TrustGroup.objects.get(is_all_members=True))


def validated(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every object the server returned must be valid STIX 2.1 for the stix2 library."""
    for obj in objects:
        stix2.parse(obj, allow_custom=True, version="2.1")
    return objects


def envelope(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"objects": list(objects)}


@contextmanager
def refused(status: int) -> Iterator[None]:
    """The client library raised for an HTTP error with this status and a TAXII error resource.
    Reading the body also hands the connection back, so no server thread waits on it."""
    with pytest.raises(requests.HTTPError) as caught:
        yield
    response = caught.value.response
    try:
        assert response.status_code == status
        assert response.headers["Content-Type"] == TAXII
        assert response.json()["http_status"] == str(status)
    finally:
        response.close()
