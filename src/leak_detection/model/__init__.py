"""The network, its fast CPU operations, its metadata contract (``model_meta.json``) and ONNX export."""
