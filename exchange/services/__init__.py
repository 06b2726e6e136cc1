"""Every write to the intelligence store goes through a function in this package."""
