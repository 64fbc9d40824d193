"""Machine definitions shipped with the orchestrator; `thread.yaml` is the default machine.

Read with `importlib.resources`, so an installed package (not only a source checkout) has it.
`ORCH_MACHINE` names another file instead.
"""
