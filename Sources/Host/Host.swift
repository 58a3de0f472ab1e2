// The host engine.
