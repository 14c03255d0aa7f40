"""JSON API blueprints under /api/."""
