"""Signing keys and tickets: the key ring, where it is kept, its rotation, reqnums,
issuing tickets."""
