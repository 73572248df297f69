"""The sample partner receiver: a small HTTP app that verifies signed message batches and records them."""
