"""QA batch inspection: a folder (or files, globs) through the inspection predictor, decoded in worker
threads, into a report folder (CSV, JSONL, a self-contained HTML page with thumbnails and heatmaps)."""
