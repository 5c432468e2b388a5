"""The scatter planner."""
