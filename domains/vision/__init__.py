"""Vision: image classification on the shared zoo, data sources and trainer."""
