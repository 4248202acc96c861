"""Backends that run a decoder artifact one bin at a time (see :func:`rtbci.runtime.load_backend`)."""
