"""Rolling customer features: a live profile per customer, equal to a batch computation over the same history.

``FeatureEngine`` applies events to a ``CustomerState``; each feature definition
(activity, sessions, cart, orders, acquisition, preferences, service) is its own module.
"""
