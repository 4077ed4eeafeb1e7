"""The turn engine: one customer turn, decided here and recorded through a storage port."""
