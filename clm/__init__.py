"""CLM: self-hosted Customer Lifecycle Management on a CRM core."""

import os

# OpenMP (scikit-learn's trees) reads this once, when its runtime loads: threads waiting at a
# barrier sleep instead of spinning, so on a shared machine they do not take the cores from the
# thread doing the work. A churn fit beside other jobs: 15-16 s CPU and 57-85 s wall spinning,
# 0.8-0.9 s CPU and 1.6-3.8 s wall sleeping (bench/README.md, "Customer value").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
