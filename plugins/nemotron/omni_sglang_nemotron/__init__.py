"""Nemotron 3 Nano Omni plugins for omni-sglang, found through entry points."""
