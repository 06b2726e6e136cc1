"""How the exchange tells the rest of the system about new intelligence, without knowing who
listens. Sent after the publishing transaction has committed.

`objects_published(sender, producer_id, version_ids, date_added, anonymous)`:
`version_ids` are primary keys of the new `StixObject` rows; all share `date_added`.
`objects_deleted(sender, producer_id, stix_id)`: a producer removed every version of an object.
"""

from django.dispatch import Signal

objects_published = Signal()
objects_deleted = Signal()
