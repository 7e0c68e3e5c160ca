"""DNS side of leg 2: providers that write TXT records, zone lookup, propagation checks."""
