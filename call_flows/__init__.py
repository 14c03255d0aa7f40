"""Flow engine, call-flow model and loader."""
