"""omni-sglang: Nemotron 3 Nano Omni on SGLang with the NIM API."""

__version__ = "0.1.0"
