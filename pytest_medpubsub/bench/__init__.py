"""`make bench`: the local system at several loads and designs, side by side on one machine."""
