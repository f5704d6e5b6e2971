"""The dispatcher design: one permanent consumer that starts a maker for every order."""
