"""TAXII 2.1 (OASIS Standard, 10 June 2021) over the exchange's store, services and visibility rule.

Not a DRF router: TAXII has its own media type and negotiation (`media.py`), error resource
(`errors.py`, `responses.py`), request handling and authentication (`base.py`), filters and
paging (`filters.py`, `versions.py`), envelope (`envelope.py`) and resources (`resources.py`).
Views are split by spec section like the reference server's: `views/discovery.py` (4.1-4.3),
`views/collections.py` (5.1-5.2), `views/manifest.py` (5.3), `views/objects.py` (5.4-5.8).

One API root (`/taxii2/api/`); one collection per trust group the member belongs to
(`TrustGroup.collection_id`, see `store.py`). Reads start from
`StixObject.objects.visible_to(member)`; writes go through the same publish and delete
services as REST.
"""
