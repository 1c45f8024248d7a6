"""Inference: the infer CLI, prediction, metrics, serving and reading checkpoints."""
