"""The experts planner."""
