"""Sub-commands of ``ivr``, one module per area."""
