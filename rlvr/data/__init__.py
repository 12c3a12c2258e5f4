"""Datasets: the synthetic arithmetic task and loaders for real math datasets (HF ``datasets``)."""
