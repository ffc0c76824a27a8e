"""llmpulse.sinks: not built yet (see the open issues); the distribution exists so the
workspace lock resolves every room together."""
