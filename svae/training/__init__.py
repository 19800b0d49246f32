"""Training: the loop (trainer), how a step is computed fast (speed), what outlives a process (runstate),
the weight average, signals and NaN guards, torchrun, TensorBoard, and `svae bench`."""
