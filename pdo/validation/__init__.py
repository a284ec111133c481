"""Data validation: Great Expectations suites, custom expectations and their decisions."""
