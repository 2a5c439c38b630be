"""/auto: one request, many experts. Parse → classify → decompose → route → run → merge."""
