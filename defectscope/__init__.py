"""The ``defectscope`` command line. Library code lives in inspection/, training/, serving/, datasets/."""
