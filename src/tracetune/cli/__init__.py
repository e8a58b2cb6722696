"""The ``tracetune`` command: ``main.py`` registers one small module per command; the commands hold
no logic.
"""
