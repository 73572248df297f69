"""Campaign service: campaigns over frozen segment audiences, dispatched through partner channels."""
