"""Full-waveform inversion references: acquisition, models, IR-WRI (ADMM), adjoint-state.

Public API
----------
Setup:      Acquisition, ObservedData, simulate_data, add_noise, sampling_matrix, source_vectors
Models:     MODELS, velocity_model, slowness_model, model_names
Inversion:  InversionProblem, model_mse
Paper data: load_paper_data, PAPER_DATA_FACTOR, DEFAULT_PAPER_DATA
Methods:    admm_fwi / ADMMResult (IR-WRI), adjoint_fwi / AdjointResult, taylor_test

numpy / scipy only (never torch).
"""

from .acquisition import Acquisition, ObservedData, add_noise, sampling_matrix, simulate_data, source_vectors
from .adjoint import AdjointResult, adjoint_fwi, taylor_test
from .admm import ADMMResult, admm_fwi
from .inversion import InversionProblem, model_mse
from .paperdata import DEFAULT_PAPER_DATA, PAPER_DATA_FACTOR, load_paper_data, paper_data_path
from .models import MODELS, model_names, slowness_model, velocity_model

__all__ = [
    "Acquisition", "ObservedData", "add_noise", "sampling_matrix", "simulate_data", "source_vectors",
    "AdjointResult", "adjoint_fwi", "taylor_test", "ADMMResult", "admm_fwi", "InversionProblem",
    "model_mse", "MODELS", "model_names", "slowness_model", "velocity_model", "DEFAULT_PAPER_DATA",
    "PAPER_DATA_FACTOR", "load_paper_data", "paper_data_path",
]
