"""Fennec (Bai et al. 2024): recommend models from history, without forward passes of the zoo and without labels."""
