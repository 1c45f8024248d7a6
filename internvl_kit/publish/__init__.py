"""Publishing: the export CLI, merge and its proofs, model card, export directory and hub client."""
