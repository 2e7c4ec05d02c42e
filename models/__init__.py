"""Text units, the grounded answerer and the extractive summariser."""
