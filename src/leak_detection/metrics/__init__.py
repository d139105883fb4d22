"""How good and how sure: the model's own evaluation split and bootstrap intervals."""
