"""Customer value and churn: RFM, predictive CLV (BG/NBD, Gamma-Gamma), churn risk."""
