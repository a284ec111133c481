"""The metered lookup path: decisions and usage events committed together, in group commits."""
