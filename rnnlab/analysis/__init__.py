"""What a set of runs says: statistics over seeds and between variants."""
