"""Thin Ray actor wrappers over :mod:`fleet` objects."""
