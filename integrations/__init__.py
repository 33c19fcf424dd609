"""Adapters that plug hosts (ipykernel, ipywidgets, mercury, stickyland) into the core.

Shipped as ``reactive.integrations``; the core never imports from here.
"""
