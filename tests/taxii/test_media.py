"""Content negotiation rules (TAXII 2.1 section 1.6.8), as small pure functions."""

import pytest

from exchange.taxii.errors import NotAcceptable
from exchange.taxii.media import accepts_taxii, require_acceptable, require_taxii_content_type
from members.exceptions import UnsupportedMediaType


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "application/taxii+json;version=2.1",
        "application/taxii+json; version=2.1",
        "APPLICATION/TAXII+JSON;VERSION=2.1",
        'application/taxii+json;version="2.1"',
        "application/taxii+json",
        "application/taxii+json;version=2.0, application/taxii+json;version=2.1",
        "text/html, */*;q=0.1",
        "application/*",
    ],
)
def test_acceptable(header):
    assert accepts_taxii(header)
    require_acceptable(header)


@pytest.mark.parametrize(
    "header",
    [
        "application/json",
        "application/taxii+json;version=2.0",
        "application/stix+json;version=2.1",
        "application/taxii+json;version=2.1;q=0",
        "*/*, application/taxii+json;q=0",
        "application/*, application/taxii+json;version=2.1;q=0",
        "garbage",
        "application/taxii+json;q=nonsense",
    ],
)
def test_not_acceptable(header):
    assert not accepts_taxii(header)
    with pytest.raises(NotAcceptable):
        require_acceptable(header)


@pytest.mark.parametrize(
    "header",
    [
        "application/taxii+json;version=2.1",
        "application/taxii+json",
        "application/taxii+json ; version=2.1 ; charset=utf-8",
    ],
)
def test_taxii_content_types(header):
    require_taxii_content_type(header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "application/json",
        "application/taxii+json;version=2.0",
        "application/stix+json;version=2.1",
        "multipart/form-data; boundary=x",
    ],
)
def test_other_content_types_are_unsupported(header):
    with pytest.raises(UnsupportedMediaType):
        require_taxii_content_type(header)
