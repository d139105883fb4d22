"""The feature store (its in-memory form and HDF5 layout), its contract, batches of segments, splits, familiarity."""
