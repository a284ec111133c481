"""Data products, one package each; see `products.registry.PRODUCTS`."""
