"""One adapter per benchmarked system (`<name>_bench.py`) and its task module; see ../common.py."""
