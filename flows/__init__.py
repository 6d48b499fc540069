"""Thin Prefect flows, one module per stage; runtime.py holds the shared server and Dask runner."""
