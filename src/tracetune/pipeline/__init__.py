"""One run end to end: the run config, the stages in order with skip/resume and progress, the
manifest, and the checks made before any training.
"""
