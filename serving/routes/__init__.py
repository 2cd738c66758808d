"""HTTP routes; each module exposes ``router``."""
