"""Box geometry: IoU, NMS and box coding, compiled with numba on the CPU."""
