"""Pixel Block Mixing itself: the vectorized mixing, the paper's restoration count, folder mixing (numpy tier)."""
