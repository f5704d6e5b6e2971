"""medpubsub: an on-demand medicine-tab factory on Kafka (patients order, makers make tabs)."""
