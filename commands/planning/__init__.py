"""What is decided before anything runs: recorded disks checked, retention rules, refusals."""
