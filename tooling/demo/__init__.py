"""`iomki demo`: a few simulated weeks on a compressed clock, ending with a summary checked against the APIs."""
