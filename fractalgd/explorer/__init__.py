"""Layer 9: the interactive explorer — a local web page over one recipe (`fractalgd serve`)."""
