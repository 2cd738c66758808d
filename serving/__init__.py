"""The inspection service: FastAPI verdicts for inline camera stations, and the station client.

Builds on ``inspection`` (decode, preprocess, infer, decide); never the other way round.
"""
