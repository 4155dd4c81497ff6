"""Deployment: the ONNX graphs an export writes, the numpy runtime that answers from them
without torch, and the model arguments shared by the decoding CLI and the server."""
