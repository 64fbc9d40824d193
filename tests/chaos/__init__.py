"""The chaos harness: the real service as subprocesses between a fault-injecting Slack emulator
and a scripted agent, killed with SIGKILL at random moments and at named steps, then checked
against the invariants of "nothing acknowledged is ever lost". `python -m tests.chaos --help`."""
