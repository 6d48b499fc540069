"""Stores: the versioned signal store (Zarr), token corpora, checkpoints, plus shared FS and lock helpers.

Kept import-light on purpose: ``import storage`` must not pull in zarr or pandas,
so Dask workers and the CLI start fast. Import the submodules you need.
"""
