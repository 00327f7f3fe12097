"""Authentication and authorization of subscribers (the local store is the embedded default)."""
