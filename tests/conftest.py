import os

# Tests run on the CPU; keep XLA from grabbing every thread for one compile.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
