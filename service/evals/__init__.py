"""Evaluation commands: each module measures one capability through the same core the API uses."""
