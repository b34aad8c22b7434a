"""Side-by-side write benchmark of triumvir against etcd (`make bench`).

The workload is fixed by the project's benchmark notes: three replicas on loopback with
fsync on, one Python load generator, Puts of 256-byte values at 1, 16 and 64 concurrent
callers. The figure that matters is the ratio between the systems, measured in one run.
"""
