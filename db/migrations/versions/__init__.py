"""Revisions, oldest first by their numbered file names."""
