"""The serve planner."""
