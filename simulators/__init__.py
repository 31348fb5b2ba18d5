"""Simulators of the world around the product."""
