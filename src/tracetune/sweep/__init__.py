"""Train a grid of variants and pick the winner by a selection rule written down before any score
exists.
"""
