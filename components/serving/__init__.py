"""The three serving stacks behind one contract: vLLM, Triton (vLLM backend) and NIM."""
