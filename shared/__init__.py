"""The contract between the gateway (api/) and the worker (worker/).

Everything here is light: no torch, no transformers. Both sides import it; neither
imports the other.
"""
