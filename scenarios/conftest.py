"""Scenario tests run against whichever platform --medpubsub-cluster selects (local by default)."""
