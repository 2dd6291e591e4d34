"""The Hydra config tree, shipped inside the package as bicameral.conf (pyproject.toml package-dir)."""
