"""convlens web service.

The service parallelises across requests (uvicorn workers and FastAPI's thread pool), so each NumPy
matrix product runs on one thread: BLAS threads on top of that oversubscribe the cores, and on a busy
2-core machine a 256×256 RGB convolution took 27 ms with two BLAS threads against 1 ms with one. These
defaults apply only when the variables are not set and NumPy is not imported yet (as when uvicorn
imports ``app.main``).
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
