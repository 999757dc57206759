"""``python -m dynabridge.streamsim``: the simulator, as ``dynabridge dev streams-sim``."""

from dynabridge.streamsim.cli import streams_sim_command

streams_sim_command(prog_name="python -m dynabridge.streamsim")
