"""Passage encoders (built-in and sentence-transformers), the FAISS vector index and BM25."""
