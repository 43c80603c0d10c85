"""Publishing: feed pages, builds, the publish gate and what a build publishes."""
