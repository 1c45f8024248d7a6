#!/usr/bin/env python
"""Fine-tune InternVL with a recipe: `python train.py RECIPE [key=value ...] [--dry-run]`."""
import sys

from internvl_kit.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
