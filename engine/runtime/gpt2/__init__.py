"""GPT-2 on scribe's own lean forward: checkpoint reading, the forward pass, quantized weights."""
