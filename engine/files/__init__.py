"""Files written whole (atomic.py); files derived from others, rebuilt when stale (derived.py)."""
