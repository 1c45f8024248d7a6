#!/usr/bin/env python
"""Merge, document and publish: `python export.py CHECKPOINT [--merge] [--push OWNER/NAME]`."""
import sys

from internvl_kit.publish.cli import main

if __name__ == "__main__":
    sys.exit(main())
