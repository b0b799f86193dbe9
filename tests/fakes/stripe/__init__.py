"""The parts of the fake Stripe API (tests/fakes/stripe_api.py says what it models)."""
