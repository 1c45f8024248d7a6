"""What the toolkit knows about InternVL checkpoints: the family table, routes, builtin tiny models and
their remote code, demo data, model loading and the memory estimate."""
