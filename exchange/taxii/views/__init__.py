"""TAXII 2.1 endpoints, one module per part of the specification (as the reference server,
medallion, splits them): discovery and status (4), collections (5.1-5.2), manifest (5.3),
objects (5.4-5.8)."""
