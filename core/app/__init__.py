"""What the pages drive: training runs and background jobs as the app sees them (both on
`core.background`), the run reports, the time estimates, and the views' URLs (each page's state one frozen
dataclass, parsed and written here only).

May import: every other room of `core` and the foundation. Nothing in `core` imports this room but the
command entry points.
"""
