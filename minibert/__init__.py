"""minibert: DistilBERT inference in plain NumPy."""
