"""C code of dandelion's Ops for PyTensor's C backend, one file per Op family."""
