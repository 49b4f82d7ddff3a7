"""Vast.ai compatibility: the routes Vast's own client and PyWorker call, and their wire formats."""
