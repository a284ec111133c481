"""Source tables departments deliver, with their contracts and column policies."""
