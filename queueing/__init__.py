"""Skills-based routing, wait-time estimation, agents."""
