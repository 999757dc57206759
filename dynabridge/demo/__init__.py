"""``dynabridge demo``: the whole pipeline on the local stack, measured (and the latency bench's
parts).

Nothing here is imported by the two processes: it is an operator tool that starts them.
"""
