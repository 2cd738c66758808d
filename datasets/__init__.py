"""defectscope's dataset tools (not the Hugging Face package of the same name).

The on-disk layout is in ``datasets.layout``; every tool reads and writes through it.
"""

DEFECTSCOPE_DATASETS = True
