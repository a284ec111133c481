"""Delivery to subscribed banks: plans, consents, metering, watchlists, batch files, objections."""
