"""convlens core: convolution arithmetic in pure NumPy (NCHW, PyTorch conventions)."""
