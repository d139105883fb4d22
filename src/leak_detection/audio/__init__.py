"""Recordings to features: reading audio files, resampling, the front end, and the parallel runner."""
