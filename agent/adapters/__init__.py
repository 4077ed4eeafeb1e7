"""Adapters: the engine's ports implemented on real systems (the SQL turn store and its
lease). They import the engine and the store; neither imports them."""
