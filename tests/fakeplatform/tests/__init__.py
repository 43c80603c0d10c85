"""The fake platforms' own tests: they answer like the real ones, refuse what the real ones refuse, and
misbehave on command."""
