"""The train planner."""
