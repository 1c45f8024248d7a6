#!/usr/bin/env python
"""Predict with a fine-tuned InternVL checkpoint: `python infer.py CHECKPOINT --dataset FILE [--compare-base]`."""
import sys

from internvl_kit.infer.cli import main

if __name__ == "__main__":
    sys.exit(main())
