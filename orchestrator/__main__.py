"""`python -m orchestrator`: the same command as the `orchestrator` console script."""

from orchestrator.service.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
