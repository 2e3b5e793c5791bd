"""Blueprints: pages, the refresh fragment, and Trackio's JSON API."""
