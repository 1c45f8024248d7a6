"""Training: the train CLI, preflight, the swift command line, launch, run directories and the swift plugin."""
