"""Endpoints and worker groups: their models, and the store that keeps them."""
