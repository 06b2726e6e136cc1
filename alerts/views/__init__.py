"""Dashboard pages that compose the intelligence store with alerts and the collective response.

They live in `alerts`, the top layer, because they show data of both apps (an object's related
activations, "affects us" from the alerts); every read starts from the exchange's visibility
rule, and every write is one service call.
"""
