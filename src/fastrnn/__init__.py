"""fastrnn: fast CPU recurrent networks (RNN, GRU, LSTM) with a NumPy API.

The forward and backpropagation-through-time loops are C kernels over SciPy's BLAS
(`fastrnn._kernels`); `fastrnn.reference` holds the same maths in plain NumPy.
"""
__version__ = "0.1.0"
