"""Dataset tools: validate, convert, stats and split messages/images JSONL (`python -m data_tools`)."""
