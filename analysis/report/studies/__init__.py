"""The report's studies, each a module with ``plan(ctx) -> [Run]`` and
``render(ctx, [(run, record)]) -> Section``."""
