"""Centralita web app, webhooks and CLI."""
