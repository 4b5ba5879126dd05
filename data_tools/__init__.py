"""Offline dataset generators: bouncing balls and CUP (sensed, scene) pairs."""
