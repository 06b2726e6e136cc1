"""How the exchange tells the rest of the system about new intelligence, without knowing who
listens. Sent after the publishing transaction has committed.

`objects_published(sender, producer_id, version_ids, date_added, anonymous)`:
`version_ids` are primary keys of the new `StixObject` rows; all share `date_added`.
`objects_deleted(sender, producer_id, stix_id, version_ids, versions, all_versions)`: a producer
removed versions of an object (`version_ids` the rows' former keys, `versions` their `modified` in
ISO form); `all_versions` is true when none is left.
"""

from django.dispatch import Signal

objects_published = Signal()
objects_deleted = Signal()
