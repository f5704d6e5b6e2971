"""The observer's parts, one job each; `pytest_medpubsub.observer` puts them together."""
