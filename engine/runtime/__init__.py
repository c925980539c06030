"""Running a model: finding and loading it, and streaming its tokens (the core every door uses)."""
