"""The built-in demo: deterministic synthetic pipe recordings."""
