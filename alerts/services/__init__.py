"""Services of the alerts app: the fan-out decides, the outbox writes, delivery sends."""
