"""Layer 7: out-of-core renders — tiles as atomic files, resumable, shared by processes."""
