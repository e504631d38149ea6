"""Signal fitting: images, audio, video, inpainting, a hypernetwork, and the shared fitting loop (signal_fit)."""
